using System.Text.Json;
using LabMesh.Testing;

namespace LabMesh.CrossLanguage.Tests;

/// <summary>
/// One of the client scripts (<c>python/labmesh_client.py</c>, <c>node/labmesh_client.js</c>), run
/// from the source tree against a host for one case. Both take the same arguments and print the same
/// JSON lines, so the tests are written once for both.
/// </summary>
public abstract class ClientScript
{
    private static readonly TimeSpan RunTimeout = TimeSpan.FromSeconds(60);

    /// <summary>"python" or "node", as the script reports itself.</summary>
    public abstract string Language { get; }

    /// <summary>The folder of google/rpc/*.proto copied beside the test assembly (from Google.Api.CommonProtos).</summary>
    public static string GoogleProtos => Path.Combine(AppContext.BaseDirectory, "google-protos");

    /// <summary>Runs one case (or "all") against <paramref name="target"/>; TLS when <paramref name="caFile"/> is given.</summary>
    public async Task<ClientRun> RunAsync(string target, string token, string clientCase, string? caFile = null, ITestOutputHelper? output = null)
    {
        var (fileName, arguments, workingDirectory) = await PrepareAsync();
        arguments.AddRange(["--target", target, "--google-protos", GoogleProtos, "--case", clientCase, "--timeout", "20"]);
        if (caFile is not null)
        {
            arguments.AddRange(["--ca-file", caFile]);
        }

        await using var process = ChildProcess.Start(fileName, arguments, workingDirectory, new Dictionary<string, string>
        {
            ["LABMESH_TOKEN"] = token,
            ["PYTHONUNBUFFERED"] = "1",
            ["PYTHONDONTWRITEBYTECODE"] = "1",
        });
        var exitCode = await process.WaitForExitAsync(RunTimeout);
        var description = $"{process.CommandLine} (exit code {exitCode})\n{process.Describe()}";
        output?.WriteLine(description);
        List<JsonElement> lines = [];
        foreach (var line in process.StandardOutput.Where(l => l.StartsWith('{')))
        {
            using var document = JsonDocument.Parse(line);
            lines.Add(document.RootElement.Clone());
        }

        return new ClientRun(description, exitCode, lines);
    }

    /// <summary>Checks the toolchain (installing what the script needs, once) and says how to start the script.</summary>
    protected abstract Task<(string FileName, List<string> Arguments, string WorkingDirectory)> PrepareAsync();

    public override string ToString() => Language;
}

/// <summary>What a client script printed: one JSON object a line.</summary>
public sealed record ClientRun(string Description, int ExitCode, IReadOnlyList<JsonElement> Lines)
{
    /// <summary>The one line of <paramref name="clientCase"/> at <paramref name="step"/>; fails with the whole output otherwise.</summary>
    public JsonElement Step(string clientCase, string step)
    {
        var found = Lines.Where(l => Text(l, "case") == clientCase && Text(l, "step") == step).ToList();
        Assert.True(found.Count == 1, $"Expected one '{clientCase}' line at step '{step}', found {found.Count}.\n{Description}");
        return found[0];
    }

    /// <summary>Fails unless the script exited 0 after its "done" line.</summary>
    public void AssertCompleted()
    {
        Assert.True(ExitCode == 0 && Lines.Any(l => Text(l, "step") == "done"), $"The client did not complete.\n{Description}");
    }

    private static string? Text(JsonElement line, string name) =>
        line.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String ? value.GetString() : null;
}
