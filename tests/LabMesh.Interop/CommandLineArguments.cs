using System.Globalization;

namespace LabMesh.Interop;

/// <summary>
/// The interop programs' command line: a mode word followed by <c>--name value</c>,
/// <c>--name=value</c> or, for flags, a bare <c>--name</c> (the interop document's
/// <c>--use_tls=BOOLEAN</c> form is accepted too).
/// </summary>
public sealed class CommandLineArguments
{
    private static readonly HashSet<string> Flags = new(StringComparer.Ordinal) { "use_tls", "use_test_ca", "help" };

    private readonly Dictionary<string, string> _values;

    private CommandLineArguments(string? mode, Dictionary<string, string> values)
    {
        Mode = mode;
        _values = values;
    }

    /// <summary>The first word (<c>server</c> or <c>client</c>), or null when none was given.</summary>
    public string? Mode { get; }

    /// <summary>Every option name given, without the leading dashes.</summary>
    public IReadOnlyCollection<string> Names => _values.Keys;

    /// <summary>Parses the arguments; throws <see cref="ArgumentException"/> with a usage hint on a malformed line.</summary>
    public static CommandLineArguments Parse(IReadOnlyList<string> args)
    {
        ArgumentNullException.ThrowIfNull(args);
        string? mode = null;
        var values = new Dictionary<string, string>(StringComparer.Ordinal);
        for (var i = 0; i < args.Count; i++)
        {
            var arg = args[i];
            if (!arg.StartsWith("--", StringComparison.Ordinal))
            {
                if (mode is null && values.Count == 0)
                {
                    mode = arg;
                    continue;
                }
                throw new ArgumentException($"Unexpected argument '{arg}'.");
            }

            var body = arg[2..];
            string name;
            string value;
            var equals = body.IndexOf('=', StringComparison.Ordinal);
            if (equals >= 0)
            {
                name = body[..equals];
                value = body[(equals + 1)..];
            }
            else if (Flags.Contains(body))
            {
                name = body;
                if (i + 1 < args.Count && (args[i + 1] is "true" or "false"))
                {
                    value = args[++i];
                }
                else
                {
                    value = "true";
                }
            }
            else
            {
                name = body;
                if (i + 1 >= args.Count)
                {
                    throw new ArgumentException($"Option '--{name}' needs a value.");
                }
                value = args[++i];
            }

            if (name.Length == 0)
            {
                throw new ArgumentException($"Malformed option '{arg}'.");
            }
            values[name] = value;
        }
        return new CommandLineArguments(mode, values);
    }

    /// <summary>Throws when an option outside <paramref name="known"/> was given (a typo must not pass silently).</summary>
    public void RejectUnknown(params string[] known)
    {
        foreach (var name in _values.Keys)
        {
            if (Array.IndexOf(known, name) < 0)
            {
                throw new ArgumentException($"Unknown option '--{name}' for mode '{Mode}'.");
            }
        }
    }

    /// <summary>The option's value, or null.</summary>
    public string? GetString(string name) => _values.TryGetValue(name, out var value) ? value : null;

    /// <summary>The option's value as a bool; <paramref name="defaultValue"/> when absent.</summary>
    public bool GetBool(string name, bool defaultValue = false)
    {
        if (!_values.TryGetValue(name, out var value))
        {
            return defaultValue;
        }
        return value switch
        {
            "true" or "1" => true,
            "false" or "0" => false,
            _ => throw new ArgumentException($"Option '--{name}' must be true or false, not '{value}'."),
        };
    }

    /// <summary>The option's value as an int; <paramref name="defaultValue"/> when absent.</summary>
    public int GetInt(string name, int defaultValue)
    {
        if (!_values.TryGetValue(name, out var value))
        {
            return defaultValue;
        }
        if (!int.TryParse(value, NumberStyles.Integer, CultureInfo.InvariantCulture, out var parsed))
        {
            throw new ArgumentException($"Option '--{name}' must be an integer, not '{value}'.");
        }
        return parsed;
    }
}
