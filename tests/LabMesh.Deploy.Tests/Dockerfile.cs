using System.Text;
using System.Text.Json;

namespace LabMesh.Deploy.Tests;

/// <summary>One instruction of a Dockerfile, continuation lines joined.</summary>
internal sealed record DockerInstruction(string Keyword, string Arguments, int Line)
{
    /// <summary>The arguments as words: a JSON array's items, or shell-like words (quotes removed).</summary>
    public IReadOnlyList<string> Words => Arguments.TrimStart().StartsWith('[')
        ? JsonSerializer.Deserialize<string[]>(Arguments)!
        : Dockerfile.SplitWords(Arguments);
}

/// <summary>A build stage: its FROM image, its name (AS ...) and its instructions after FROM.</summary>
internal sealed record DockerStage(string Image, string? Name, IReadOnlyList<DockerInstruction> Instructions)
{
    public IEnumerable<DockerInstruction> All(string keyword) => Instructions.Where(i => i.Keyword == keyword);

    /// <summary>ENV settings of the stage, later ones winning.</summary>
    public IReadOnlyDictionary<string, string> Environment
    {
        get
        {
            var values = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var env in All("ENV"))
            {
                var words = env.Words;
                if (words.Count > 0 && !words[0].Contains('=', StringComparison.Ordinal))
                {
                    values[words[0]] = string.Join(' ', words.Skip(1)); // ENV key value
                    continue;
                }

                foreach (var word in words)
                {
                    var equals = word.IndexOf('=', StringComparison.Ordinal);
                    values[word[..equals]] = word[(equals + 1)..];
                }
            }

            return values;
        }
    }

    /// <summary>The stage's working directory at the end (WORKDIR, absolute or relative to the previous one).</summary>
    public string WorkingDirectory => All("WORKDIR").Aggregate("/", (current, workdir) =>
    {
        var path = workdir.Words[0];
        return path.StartsWith('/') ? path : $"{current.TrimEnd('/')}/{path}";
    });
}

/// <summary>A Dockerfile read the way the builder reads it, enough to check what it does.</summary>
internal sealed class Dockerfile
{
    private Dockerfile(string path, IReadOnlyList<DockerInstruction> instructions)
    {
        Path = path;
        Instructions = instructions;
        var stages = new List<DockerStage>();
        foreach (var (instruction, index) in instructions.Select((instruction, index) => (instruction, index)))
        {
            if (instruction.Keyword != "FROM")
            {
                continue;
            }

            var words = instruction.Words.Where(w => !w.StartsWith("--", StringComparison.Ordinal)).ToList();
            var name = words.Count >= 3 && words[1].Equals("AS", StringComparison.OrdinalIgnoreCase) ? words[2] : null;
            var body = instructions.Skip(index + 1).TakeWhile(i => i.Keyword != "FROM").ToList();
            stages.Add(new DockerStage(words[0], name, body));
        }

        Stages = stages;
    }

    /// <summary>Repository-relative path of the file.</summary>
    public string Path { get; }

    public IReadOnlyList<DockerInstruction> Instructions { get; }

    public IReadOnlyList<DockerStage> Stages { get; }

    public DockerStage Final => Stages[^1];

    public static string PathFor(string project) => $"services/{project}/Dockerfile";

    public static Dockerfile Load(string relativePath)
    {
        var instructions = new List<DockerInstruction>();
        var pending = new StringBuilder();
        var start = 0;
        var lines = File.ReadAllLines(Repository.PathOf(relativePath));
        for (var i = 0; i < lines.Length; i++)
        {
            var line = lines[i];
            var trimmed = line.Trim();
            if (trimmed.Length == 0 || trimmed.StartsWith('#'))
            {
                continue; // comments and blank lines, also inside a continued instruction
            }

            if (pending.Length == 0)
            {
                start = i + 1;
            }

            var continued = trimmed.EndsWith('\\');
            pending.Append(continued ? trimmed[..^1] : trimmed).Append(' ');
            if (!continued)
            {
                var text = pending.ToString().Trim();
                var space = text.IndexOf(' ', StringComparison.Ordinal);
                instructions.Add(new DockerInstruction(
                    (space < 0 ? text : text[..space]).ToUpperInvariant(),
                    space < 0 ? "" : text[(space + 1)..].Trim(),
                    start));
                pending.Clear();
            }
        }

        return new Dockerfile(relativePath, instructions);
    }

    /// <summary>Shell-like words: whitespace separates, double and single quotes group and are removed.</summary>
    public static IReadOnlyList<string> SplitWords(string text)
    {
        var words = new List<string>();
        var word = new StringBuilder();
        var inWord = false;
        char? quote = null;
        foreach (var c in text)
        {
            if (quote is not null)
            {
                if (c == quote)
                {
                    quote = null;
                }
                else
                {
                    word.Append(c);
                }
            }
            else if (c is '"' or '\'')
            {
                quote = c;
                inWord = true;
            }
            else if (char.IsWhiteSpace(c))
            {
                if (inWord)
                {
                    words.Add(word.ToString());
                    word.Clear();
                    inWord = false;
                }
            }
            else
            {
                word.Append(c);
                inWord = true;
            }
        }

        if (inWord)
        {
            words.Add(word.ToString());
        }

        return words;
    }

    public override string ToString() => Path;
}
