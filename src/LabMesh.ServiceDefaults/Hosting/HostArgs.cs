namespace LabMesh.ServiceDefaults.Hosting;

/// <summary>The command line a LabMesh host builds from.</summary>
public static class HostArgs
{
    /// <summary>The host setting that turns off reloading appsettings*.json on change (Microsoft.Extensions.Hosting).</summary>
    public const string ReloadConfigOnChange = "--hostBuilder:reloadConfigOnChange=false";

    /// <summary>
    /// The arguments with configuration reload switched off, ahead of the caller's own (a later
    /// <c>--hostBuilder:reloadConfigOnChange=true</c> still wins). To reload appsettings*.json, the host watches its
    /// content root and every directory under it (one inotify watch each) even when no such file exists; the content root
    /// is the working directory, which holds the default SQLite directory <c>data/</c> (and <c>/app/data</c> in the
    /// images), so every write to a database or its WAL woke the watcher's thread. In the webhook drain run from a busy
    /// directory that thread took 18% of the CPU (bench/README.md, session 12). Nothing in LabMesh reads configuration
    /// again after start: deployments configure by environment, and a changed file takes a restart, as it did for
    /// every setting read at start anyway.
    /// </summary>
    public static string[] WithoutConfigReload(string[] args) => [ReloadConfigOnChange, .. args];
}
