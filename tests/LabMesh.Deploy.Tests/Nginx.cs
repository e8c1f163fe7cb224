using System.Text;
using Xunit.Sdk;

namespace LabMesh.Deploy.Tests;

/// <summary>One nginx directive: its name, arguments and block (null for a simple directive).</summary>
internal sealed record NginxDirective(string Name, IReadOnlyList<string> Args, IReadOnlyList<NginxDirective>? Block, string File)
{
    public IEnumerable<NginxDirective> Children(string name) => (Block ?? []).Where(d => d.Name == name);

    public NginxDirective? Child(string name) => Children(name).SingleOrDefault();

    public override string ToString() => $"{Name} {string.Join(' ', Args)} ({File})";
}

/// <summary>nginx configuration, parsed into directives with include resolved.</summary>
internal static class Nginx
{
    /// <summary>
    /// Parses <paramref name="file"/> (repository-relative); an include names a path inside the
    /// container, which <paramref name="hostPathOf"/> maps to a repository file.
    /// </summary>
    public static IReadOnlyList<NginxDirective> Load(string file, Func<string, string?> hostPathOf)
    {
        var tokens = Tokenize(Repository.Read(file));
        var position = 0;
        var directives = ParseBlock(tokens, ref position, file, topLevel: true);
        return Expand(directives, hostPathOf);
    }

    private static List<NginxDirective> Expand(IReadOnlyList<NginxDirective> directives, Func<string, string?> hostPathOf)
    {
        var expanded = new List<NginxDirective>();
        foreach (var directive in directives)
        {
            if (directive.Name == "include")
            {
                var host = hostPathOf(directive.Args[0])
                    ?? throw new XunitException($"{directive.File}: include {directive.Args[0]} is not mounted from the repository.");
                if (!Repository.Exists(host))
                {
                    throw new XunitException($"{directive.File}: include {directive.Args[0]} is mounted from {host}, which does not exist.");
                }

                expanded.AddRange(Load(host, hostPathOf));
            }
            else
            {
                expanded.Add(directive.Block is null ? directive : directive with { Block = Expand(directive.Block, hostPathOf) });
            }
        }

        return expanded;
    }

    private static List<NginxDirective> ParseBlock(IReadOnlyList<string> tokens, ref int position, string file, bool topLevel)
    {
        var directives = new List<NginxDirective>();
        while (position < tokens.Count)
        {
            var token = tokens[position++];
            if (token == "}")
            {
                return topLevel ? throw new XunitException($"{file}: unbalanced '}}'.") : directives;
            }

            var args = new List<string>();
            while (position < tokens.Count && tokens[position] is not (";" or "{" or "}"))
            {
                args.Add(tokens[position++]);
            }

            var end = position < tokens.Count ? tokens[position++] : throw new XunitException($"{file}: '{token}' is not ended by ';' or a block.");
            if (end == "}")
            {
                throw new XunitException($"{file}: '{token}' is not ended by ';'.");
            }

            directives.Add(new NginxDirective(token, args, end == "{" ? ParseBlock(tokens, ref position, file, topLevel: false) : null, file));
        }

        return topLevel ? directives : throw new XunitException($"{file}: a block is not closed.");
    }

    private static List<string> Tokenize(string text)
    {
        var tokens = new List<string>();
        var token = new StringBuilder();
        var quoted = false; // a quoted empty string ("") is a token too
        void Flush()
        {
            if (token.Length > 0 || quoted)
            {
                tokens.Add(token.ToString());
                token.Clear();
                quoted = false;
            }
        }

        for (var i = 0; i < text.Length; i++)
        {
            var c = text[i];
            if (c == '#')
            {
                Flush();
                while (i < text.Length && text[i] != '\n')
                {
                    i++;
                }
            }
            else if (c is '"' or '\'')
            {
                var close = text.IndexOf(c, i + 1);
                token.Append(text, i + 1, close - i - 1);
                quoted = true;
                i = close;
            }
            else if (c is ';' or '{' or '}')
            {
                Flush();
                tokens.Add(c.ToString());
            }
            else if (char.IsWhiteSpace(c))
            {
                Flush();
            }
            else
            {
                token.Append(c);
            }
        }

        Flush();
        return tokens;
    }
}
