namespace LabMesh.Interop.Tests;

/// <summary>Python's grpcio interop server (interop_server.py).</summary>
public sealed class PythonServerFixture() : ExternalInteropServerFixture("python")
{
    protected override Task RequireRuntimeAsync() => PythonGrpc.RequireAsync();

    private protected override ExternalProcess StartProcess(IReadOnlyList<string> serverArguments) =>
        ExternalProcess.Start(PythonGrpc.Interpreter, [PythonGrpc.ServerScript, .. serverArguments]);
}
