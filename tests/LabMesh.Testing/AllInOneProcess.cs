using Xunit;

namespace LabMesh.Testing;

/// <summary>
/// The all-in-one host as the README runs it: its own process (<c>dotnet LabMesh.AllInOne.dll --urls ...</c>, the
/// build beside the test's configuration) in a fresh temporary working directory (its <c>data/</c> goes under it), on
/// a free loopback port, started once its welcome is printed. A class or collection fixture as it is; a subclass
/// adds arguments and environment. Its output is kept line by line, so a test can fail on an error it logged.
/// </summary>
public class AllInOneProcess : IAsyncLifetime
{
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(90);
    private readonly IReadOnlyDictionary<string, string> _environment;
    private ChildProcess? _process;

    public AllInOneProcess()
        : this(new Dictionary<string, string>())
    {
    }

    /// <param name="environment">Environment variables of the host (a subclass may override <see cref="Environment"/> instead).</param>
    protected AllInOneProcess(IReadOnlyDictionary<string, string> environment) => _environment = environment;

    /// <summary>One that is given <paramref name="environment"/> (not started yet: <see cref="InitializeAsync"/>).</summary>
    public static AllInOneProcess WithEnvironment(IReadOnlyDictionary<string, string> environment) => new(environment);

    public string WorkingDirectory { get; } = Directory.CreateTempSubdirectory("labmesh-aio-").FullName;

    /// <summary>The h2c port of <c>--urls</c>, which is also where the services reach each other inside the host.</summary>
    public int Port { get; private set; }

    public string Address => $"http://127.0.0.1:{Port}";

    public ChildProcess Process => _process ?? throw new InvalidOperationException("The host has not started.");

    /// <summary>What it printed to stdout so far (the welcome first).</summary>
    public IReadOnlyList<string> Output => Process.StandardOutput;

    public async Task InitializeAsync()
    {
        Port = FreePort.Next();
        _process = ChildProcess.Start("dotnet", [Repository.AllInOneAssembly(), "--urls", Address, .. Arguments()], WorkingDirectory, Environment());
        // The welcome is printed once the host serves; its last line is the ListRequisitions example.
        await _process.WaitForLineAsync(line => line.Contains("RequisitionService/ListRequisitions", StringComparison.Ordinal), StartTimeout, "its welcome");
    }

    /// <summary>Arguments after <c>--urls</c> (<see cref="Port"/> is known by then).</summary>
    protected virtual IEnumerable<string> Arguments() => [];

    /// <summary>Environment variables of the host.</summary>
    protected virtual IReadOnlyDictionary<string, string> Environment() => _environment;

    /// <summary>The text after <paramref name="label"/> on the welcome's line that starts with it (e.g. "clinician: ", its token).</summary>
    public string Welcome(string label) =>
        Output.Single(line => line.TrimStart().StartsWith(label, StringComparison.Ordinal)).Trim()[label.Length..];

    /// <summary>Where its output is now, to look for errors logged after it (<see cref="Errors"/>).</summary>
    public OutputMark Mark() => new(Process.StandardOutput.Count, Process.StandardError.Count);

    /// <summary>
    /// Its log entries at error or critical level since <paramref name="since"/> (the console logger's <c>fail:</c> and
    /// <c>crit:</c> lines with the lines after each), and a note if the host is no longer running.
    /// </summary>
    public IReadOnlyList<string> Errors(OutputMark since = default)
    {
        List<string> errors = [];
        foreach (var lines in new[] { Process.StandardOutput.Skip(since.Stdout).ToList(), Process.StandardError.Skip(since.Stderr).ToList() })
        {
            for (var i = 0; i < lines.Count; i++)
            {
                if (lines[i].StartsWith("fail:", StringComparison.Ordinal) || lines[i].StartsWith("crit:", StringComparison.Ordinal))
                {
                    errors.Add(string.Join('\n', lines.Skip(i).Take(4)));
                }
            }
        }

        if (Process.HasExited)
        {
            errors.Add("The host exited.\n" + Process.Describe());
        }

        return errors;
    }

    /// <summary>Fails when the host logged an error since <paramref name="since"/>, or exited.</summary>
    public void AssertNoErrors(OutputMark since = default)
    {
        var errors = Errors(since);
        Assert.True(errors.Count == 0, "The host logged errors:\n" + string.Join("\n---\n", errors));
    }

    public virtual async Task DisposeAsync()
    {
        if (_process is not null)
        {
            await _process.DisposeAsync();
        }

        Directory.Delete(WorkingDirectory, recursive: true);
    }
}

/// <summary>How many lines a process had printed to stdout and stderr at one moment.</summary>
public readonly record struct OutputMark(int Stdout, int Stderr);
