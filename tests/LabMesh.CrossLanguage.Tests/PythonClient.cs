using LabMesh.Testing;

namespace LabMesh.CrossLanguage.Tests;

/// <summary>
/// <c>python/labmesh_client.py</c> on Debian's Python and grpcio (<c>/usr/bin/python3</c>: the
/// <c>python3</c> on PATH may be another interpreter without grpc). The script generates its stubs
/// with protoc and grpc_python_plugin and says which package is missing when one is. A missing
/// toolchain fails the test: tools/test.sh installs it, so its absence is a broken machine, never a skip.
/// </summary>
public sealed class PythonClient : ClientScript
{
    public const string Interpreter = "/usr/bin/python3";

    public static readonly PythonClient Instance = new();

    private PythonClient()
    {
    }

    public override string Language => "python";

    protected override Task<(string FileName, List<string> Arguments, string WorkingDirectory)> PrepareAsync()
    {
        if (!File.Exists(Interpreter))
        {
            Assert.Fail($"{Interpreter} is missing: apt-get install python3 python3-grpcio python3-protobuf protobuf-compiler protobuf-compiler-grpc libprotobuf-dev (tools/test.sh does).");
        }

        var directory = Path.Combine(Repository.Root, "tests", "LabMesh.CrossLanguage.Tests", "python");
        return Task.FromResult((Interpreter, new List<string> { Path.Combine(directory, "labmesh_client.py") }, directory));
    }
}
