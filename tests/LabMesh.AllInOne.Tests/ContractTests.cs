using LabMesh.Testing;

namespace LabMesh.AllInOne.Tests;

/// <summary>
/// The contracts guarded in CI (issue 19): <c>buf lint</c> with the checked-in <c>buf.yaml</c>, and <c>buf breaking</c>
/// against <c>protos/baseline.binpb</c>, the published contracts. A wire-breaking change to a .proto fails these tests
/// with buf's own message (protos/README.md says how to move the baseline on purpose).
/// </summary>
public sealed class ContractTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(120);

    [Fact]
    public async Task BufLint_PassesWithTheCheckedInConfiguration()
    {
        var linted = await Buf.RunInAsync(Repository.Root, Timeout, "lint");

        Assert.True(linted.ExitCode == 0, "buf lint (buf.yaml) found problems in protos/:\n" + linted);
    }

    [Fact]
    public async Task BufBreaking_FindsNothingAgainstThePublishedBaseline()
    {
        var checkedAgainst = await Buf.RunInAsync(Repository.Root, Timeout, "breaking", "protos", "--against", "protos/baseline.binpb");

        Assert.True(checkedAgainst.ExitCode == 0,
            "buf breaking: protos/ breaks the published contracts (protos/baseline.binpb). Undo the change, or add a new field, RPC or message instead:\n" + checkedAgainst);
    }

    [Theory]
    // A field renumbered: the bytes of every client built on the baseline now mean something else.
    [InlineData("  TaskBusinessStatus task_business_status = 2;\n  // The etag read last",
        "  TaskBusinessStatus task_business_status = 20;\n  // The etag read last",
        "Previously present field \"2\" with name \"task_business_status\" on message \"UpdateTaskStatusRequest\" was deleted.")]
    // A field renamed: the same bytes, but a different JSON name (REST, buf curl, grpcurl) and generated property.
    [InlineData("  string task_description = 7;", "  string description = 7;",
        "Field \"7\" on message \"ServiceRequest\" changed name from \"task_description\" to \"description\".")]
    // A seed value renamed.
    [InlineData("  ORDER_CONFIRMED = 1;", "  CONFIRMED = 1;",
        "Enum value \"1\" on enum \"TaskBusinessStatus\" changed name from \"ORDER_CONFIRMED\" to \"CONFIRMED\".")]
    public async Task BufBreaking_FailsWithBufsMessage_OnADeliberatelyBrokenCopy(string published, string broken, string message)
    {
        await using var copy = await ContractsCopy.CreateAsync();
        copy.Edit("labmesh/servicerequest/v1/service_request.proto", published, broken);

        var checkedAgainst = await Buf.RunInAsync(copy.Root, Timeout, "breaking", "protos", "--against", Path.Combine(Repository.Root, "protos", "baseline.binpb"));

        Assert.True(checkedAgainst.ExitCode != 0, "buf breaking passed a breaking change:\n" + checkedAgainst);
        Assert.Contains(message, checkedAgainst.Stdout + checkedAgainst.Stderr, StringComparison.Ordinal);
        Assert.Contains("protos/labmesh/servicerequest/v1/service_request.proto", checkedAgainst.Stdout + checkedAgainst.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task BufBreaking_PassesAnAddition_OnACopy()
    {
        await using var copy = await ContractsCopy.CreateAsync();
        copy.Edit("labmesh/servicerequest/v1/service_request.proto", "  int32 line = 12;\n}", "  int32 line = 12;\n  // An addition.\n  string added_field = 13;\n}");

        var checkedAgainst = await Buf.RunInAsync(copy.Root, Timeout, "breaking", "protos", "--against", Path.Combine(Repository.Root, "protos", "baseline.binpb"));

        Assert.True(checkedAgainst.ExitCode == 0, "buf breaking refused an added field:\n" + checkedAgainst);
    }

    [Fact]
    public async Task BufLint_FailsWithBufsMessage_OnACopyThatBreaksTheNamingRules()
    {
        await using var copy = await ContractsCopy.CreateAsync();
        copy.Edit("labmesh/servicerequest/v1/service_request.proto", "  int32 line = 12;\n}", "  int32 line = 12;\n  string AddedField = 13;\n}");

        var linted = await Buf.RunInAsync(copy.Root, Timeout, "lint");

        Assert.True(linted.ExitCode != 0, "buf lint passed a field name that is not lower_snake_case:\n" + linted);
        Assert.Contains("Field name \"AddedField\" should be lower_snake_case, such as \"added_field\".", linted.Stdout + linted.Stderr, StringComparison.Ordinal);
    }

    /// <summary>buf.yaml, protos/ and third_party/ copied to a scratch directory, to be broken there.</summary>
    private sealed class ContractsCopy : IAsyncDisposable
    {
        private ContractsCopy(string root) => Root = root;

        public string Root { get; }

        public static Task<ContractsCopy> CreateAsync()
        {
            var root = Directory.CreateTempSubdirectory("labmesh-contracts-").FullName;
            File.Copy(Path.Combine(Repository.Root, "buf.yaml"), Path.Combine(root, "buf.yaml"));
            foreach (var folder in new[] { "protos", "third_party" })
            {
                var source = Path.Combine(Repository.Root, folder);
                foreach (var file in Directory.EnumerateFiles(source, "*.proto", SearchOption.AllDirectories))
                {
                    var target = Path.Combine(root, folder, Path.GetRelativePath(source, file));
                    Directory.CreateDirectory(Path.GetDirectoryName(target)!);
                    File.Copy(file, target);
                }
            }

            return Task.FromResult(new ContractsCopy(root));
        }

        /// <summary>Replaces the one occurrence of <paramref name="from"/> in protos/<paramref name="path"/>.</summary>
        public void Edit(string path, string from, string to)
        {
            var file = Path.Combine(Root, "protos", path);
            var text = File.ReadAllText(file);
            var at = text.IndexOf(from, StringComparison.Ordinal);
            Assert.True(at >= 0 && text.IndexOf(from, at + 1, StringComparison.Ordinal) < 0, $"'{from}' is not in {path} exactly once");
            File.WriteAllText(file, string.Concat(text.AsSpan(0, at), to, text.AsSpan(at + from.Length)));
        }

        public ValueTask DisposeAsync()
        {
            Directory.Delete(Root, recursive: true);
            return ValueTask.CompletedTask;
        }
    }
}
