using System.Diagnostics;
using System.Text;
using System.Text.Json;
using LabMesh.Testing;

namespace LabMesh.Cli.Tests;

/// <summary>What one run of <c>labmesh</c> did.</summary>
public sealed record CliRun(int ExitCode, string Stdout, string Stderr)
{
    /// <summary>Stdout as JSON lines, each parsed.</summary>
    public IReadOnlyList<JsonElement> JsonLines() =>
        [.. Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(line => JsonDocument.Parse(line).RootElement)];

    /// <summary>Stdout as one JSON document.</summary>
    public JsonElement Json() => JsonDocument.Parse(Stdout).RootElement;

    public override string ToString() => $"exit {ExitCode}\n--- stdout\n{Stdout}\n--- stderr\n{Stderr}";
}

/// <summary>Runs the built <c>labmesh</c> (<c>dotnet labmesh.dll ...</c>) as a user or a script would.</summary>
internal static class LabMeshCli
{
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(60);

    public static async Task<CliRun> RunAsync(params string[] args) => await RunAsync(DefaultTimeout, args);

    public static async Task<CliRun> RunAsync(TimeSpan timeout, params string[] args) => await RunAsync(timeout, Start(args), args);

    /// <summary>Runs labmesh in <paramref name="workingDirectory"/> with no LABMESH_DEV_KEY: it finds a development key by itself or has none.</summary>
    public static async Task<CliRun> RunInAsync(string workingDirectory, params string[] args)
    {
        var process = Start(args, start =>
        {
            start.WorkingDirectory = workingDirectory;
            start.Environment.Remove("LABMESH_DEV_KEY");
        });
        return await RunAsync(DefaultTimeout, process, args);
    }

    private static async Task<CliRun> RunAsync(TimeSpan timeout, Process started, string[] args)
    {
        using var process = started;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        try
        {
            await process.WaitForExitAsync().WaitAsync(timeout);
        }
        catch (TimeoutException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"labmesh {string.Join(' ', args)} did not finish within {timeout.TotalSeconds:0} s.");
        }

        return new CliRun(process.ExitCode, await stdout.WaitAsync(timeout), await stderr.WaitAsync(timeout));
    }

    /// <summary>Starts <c>labmesh</c> with its output redirected; the caller reads it and ends the process.</summary>
    public static Process Start(params string[] args) => Start(args, configure: null);

    private static Process Start(string[] args, Action<ProcessStartInfo>? configure)
    {
        var start = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            StandardOutputEncoding = Encoding.UTF8,
            StandardErrorEncoding = Encoding.UTF8,
        };
        start.Environment["NO_COLOR"] = "1";
        // labmesh signs its calls with the test key, which the mesh host trusts (as it would the all-in-one's development key).
        start.Environment["LABMESH_DEV_KEY"] = TestKeyFile.Path;
        start.Environment.Remove("LABMESH_TOKEN");
        start.ArgumentList.Add(Repository.Built("tools/LabMesh.Cli", "labmesh.dll"));
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        configure?.Invoke(start);
        return Process.Start(start)!;
    }
}

/// <summary>TestCaller's key in the all-in-one host's development key format, for labmesh's LABMESH_DEV_KEY.</summary>
internal static class TestKeyFile
{
    private static readonly Lazy<string> File = new(() =>
    {
        var path = System.IO.Path.Combine(Directory.CreateTempSubdirectory("labmesh-cli-key-").FullName, "dev-signing-key.json");
        System.IO.File.WriteAllText(path, JsonSerializer.Serialize(new LabMesh.Security.Identity.DevelopmentKey
        {
            KeyId = LabMesh.Testing.TestCaller.KeyId,
            Issuer = "labmesh",
            Audience = "labmesh",
            PrivateKeyPem = LabMesh.Testing.TestCaller.Key.ExportPrivateKeyPem(),
        }));
        return path;
    });

    public static string Path => File.Value;
}
