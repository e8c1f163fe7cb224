using LabMesh.Testing;

namespace LabMesh.AllInOne.Tests;

/// <summary>
/// The four services in one host, as the all-in-one Program.cs wires them (reflection on, the default), on a
/// loopback port with SQLite and the in-process bus; it trusts TestCaller's key. One per test class.
/// </summary>
public class ReflectionHost : IAsyncLifetime
{
    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);

    private string _dataDirectory = null!;

    public ServiceHost Host { get; private set; } = null!;

    /// <summary>The base URL clients are given (h2c).</summary>
    public string Address => Host.Address;

    public async Task InitializeAsync()
    {
        var settings = await TestSettings.CreateAsync(Backend.Sqlite);
        Configure(settings);
        _dataDirectory = settings["LabMesh:Storage:DataDirectory"]!;
        Host = await MeshHosts.StartAllInOneAsync(settings, FreePort.Next()).WaitAsync(TimeSpan.FromSeconds(120));
    }

    /// <summary>Settings of this host beyond the defaults.</summary>
    protected virtual void Configure(Dictionary<string, string?> settings)
    {
    }

    public async Task DisposeAsync()
    {
        var logs = Host.Logs;
        await Host.DisposeAsync();
        Directory.Delete(_dataDirectory, recursive: true);
        logs.AssertNoErrors();
    }
}

/// <summary>The same host with <c>LabMesh:Security:Reflection=false</c>, as production runs it.</summary>
public sealed class ReflectionOffHost : ReflectionHost
{
    protected override void Configure(Dictionary<string, string?> settings) => settings["LabMesh:Security:Reflection"] = "false";
}
