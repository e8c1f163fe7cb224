namespace LabMesh.Interop.Tests;

/// <summary>
/// Node's grpc-js interop server (interop_server.js). It also stops when its standard input closes
/// (--exit_with_stdin), so a test host that dies leaves none behind.
/// </summary>
public sealed class NodeServerFixture() : ExternalInteropServerFixture("node")
{
    protected override Task RequireRuntimeAsync() => NodeGrpc.RequireAsync();

    protected override string RuntimeDescription => $"({NodeGrpc.Versions})\n";

    private protected override ExternalProcess StartProcess(IReadOnlyList<string> serverArguments) =>
        ExternalProcess.Start(NodeGrpc.Node, [NodeGrpc.ServerScript, .. serverArguments, "--exit_with_stdin"], NodeGrpc.ScriptDirectory);
}
