namespace LabMesh.Cli.Tests;

/// <summary>Help and usage errors: no mesh needed.</summary>
public sealed class UsageTests
{
    [Theory]
    [InlineData("", "demo")]
    [InlineData("demo", "labmesh demo")]
    [InlineData("watch", "labmesh watch --type labtest.result.critical")]
    [InlineData("status", "labmesh status 0192f0c4")]
    [InlineData("load", "labmesh load --calls 50 --json")]
    [InlineData("token", "labmesh token --role partner --partner lab-a")]
    public async Task Help_EachCommand_ShowsUsageOptionsAndExamples(string command, string example)
    {
        var run = await LabMeshCli.RunAsync([.. command.Split(' ', StringSplitOptions.RemoveEmptyEntries), "--help"]);

        Assert.True(run.ExitCode == 0, run.ToString());
        Assert.Contains("Usage:", run.Stdout, StringComparison.Ordinal);
        Assert.Contains($"labmesh {command}".Trim(), run.Stdout, StringComparison.Ordinal);
        foreach (var option in new[] { "--target <ADDR>", "--team <TEAM>", "--json", "--timeout <DURATION>" })
        {
            Assert.Contains(option, run.Stdout, StringComparison.Ordinal);
        }

        var examples = run.Stdout.IndexOf("Examples:", StringComparison.Ordinal);
        Assert.True(examples > 0, run.ToString());
        Assert.Contains(example, run.Stdout[examples..], StringComparison.Ordinal);
        Assert.Equal("", run.Stderr);
    }

    [Theory]
    [InlineData("Required command was not provided")]
    [InlineData("frobnicate", "frobnicate")]
    [InlineData("'--bogus'", "status", "some-id", "--bogus")]
    [InlineData("Required argument missing", "status")]
    [InlineData("--concurrency must be 1 to 1000", "load", "--concurrency", "0")]
    [InlineData("--calls must be at least 1", "load", "--calls", "0", "--json")]
    [InlineData("Nope", "load", "--rpc", "Nope")]
    [InlineData("'soon' is not a duration", "load", "--duration", "soon")]
    [InlineData("--rate must be a positive number", "load", "--rate", "-3")]
    [InlineData("is not a target", "demo", "--target", "ftp://example.invalid", "--json")]
    [InlineData("--team must be 1 to 128 characters", "watch", "--team", "")]
    [InlineData("--heartbeat must be between 1s and 5m", "watch", "--heartbeat", "10m")]
    [InlineData("Option '--role' is required", "token")]
    [InlineData("nurse", "token", "--role", "nurse")]
    [InlineData("--partner is only for --role partner", "token", "--role", "clinician", "--partner", "lab-a")]
    [InlineData("--ttl must be at most 30 days", "token", "--role", "admin", "--ttl", "721h")]
    [InlineData("is not a duration", "token", "--role", "admin", "--ttl", "0")]
    public async Task BadUsage_ExitsTwoWithTheErrorOnStderrAndNothingOnStdout(string error, params string[] args)
    {
        var run = await LabMeshCli.RunAsync(args);

        Assert.True(run.ExitCode == 2, run.ToString());
        Assert.Contains(error, run.Stderr, StringComparison.Ordinal);
        Assert.Contains("--help' for usage and examples", run.Stderr, StringComparison.Ordinal);
        Assert.Equal("", run.Stdout);
    }

    [Fact]
    public async Task Status_NothingListening_ExitsOneNamingUnavailableAndTheAddress()
    {
        var address = $"http://127.0.0.1:{LabMesh.Testing.FreePort.Next()}";

        var run = await LabMeshCli.RunAsync("status", "0192f0c4-7d1e-7b3a-9c55-2f1e6f1d2a10", "--target", address, "--json");

        Assert.True(run.ExitCode == 1, run.ToString());
        Assert.Contains("UNAVAILABLE", run.Stderr, StringComparison.Ordinal);
        Assert.Contains(address, run.Stderr, StringComparison.Ordinal);
        Assert.Equal("", run.Stdout);
    }
}
