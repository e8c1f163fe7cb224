using System.Diagnostics;
using Google.Protobuf;
using Google.Protobuf.Reflection;

namespace LabMesh.Grpc.Tests.Reflection;

/// <summary>
/// gRPC's published protos (Debian's grpc-proto package) parsed with protoc, and a structural comparison with
/// the descriptors LabMesh compiles from its own copies: the contract must be the published one.
/// </summary>
internal static class PublishedProtos
{
    public const string Root = "/usr/share/grpc-proto";

    /// <summary>Parses a published proto (path relative to <see cref="Root"/>) into a FileDescriptorProto.</summary>
    public static async Task<FileDescriptorProto> ParseAsync(string relativePath)
    {
        var source = Path.Combine(Root, relativePath);
        Assert.True(File.Exists(source), $"{source} is missing: install Debian's grpc-proto package (apt-get install -y grpc-proto).");
        var output = Path.Combine(Path.GetTempPath(), $"labmesh-published-{Guid.NewGuid():N}.pb");
        try
        {
            var start = new ProcessStartInfo(FindProtoc())
            {
                RedirectStandardError = true,
                RedirectStandardOutput = true,
                UseShellExecute = false,
            };
            start.ArgumentList.Add($"--proto_path={Root}");
            start.ArgumentList.Add($"--descriptor_set_out={output}");
            start.ArgumentList.Add(relativePath);
            using var protoc = Process.Start(start)!;
            var stderr = protoc.StandardError.ReadToEndAsync();
            await protoc.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(30));
            Assert.True(protoc.ExitCode == 0, $"protoc failed on {relativePath}: {await stderr.WaitAsync(TimeSpan.FromSeconds(5))}");
            var set = FileDescriptorSet.Parser.ParseFrom(await File.ReadAllBytesAsync(output).WaitAsync(TimeSpan.FromSeconds(10)));
            return Assert.Single(set.File);
        }
        finally
        {
            File.Delete(output);
        }
    }

    /// <summary>The FileDescriptorProto embedded in generated code.</summary>
    public static FileDescriptorProto ToProto(FileDescriptor file) => FileDescriptorProto.Parser.ParseFrom(file.SerializedData);

    /// <summary>Every difference in names, numbers, types, labels, streaming and options; empty when they match.</summary>
    public static List<string> Differences(FileDescriptorProto expected, FileDescriptorProto actual)
    {
        var differences = new List<string>();
        Same(differences, "file name", expected.Name, actual.Name);
        Same(differences, "package", expected.Package, actual.Package);
        Same(differences, "syntax", expected.Syntax, actual.Syntax);
        Same(differences, "imports", string.Join(", ", expected.Dependency), string.Join(", ", actual.Dependency));
        Same(differences, "file options", Show(expected.Options), Show(actual.Options));
        Same(differences, "csharp_namespace", expected.Options?.CsharpNamespace ?? "", actual.Options?.CsharpNamespace ?? "");
        CompareMessages(differences, expected.Package, expected.MessageType, actual.MessageType);
        CompareEnums(differences, expected.Package, expected.EnumType, actual.EnumType);
        Same(differences, "extensions", expected.Extension.Count, actual.Extension.Count);

        ByName(differences, expected.Package, "service", expected.Service, actual.Service, s => s.Name, (path, e, a) =>
        {
            Same(differences, $"{path} options", Show(e.Options), Show(a.Options));
            ByName(differences, path, "method", e.Method, a.Method, m => m.Name, (methodPath, em, am) =>
            {
                Same(differences, $"{methodPath} input", em.InputType, am.InputType);
                Same(differences, $"{methodPath} output", em.OutputType, am.OutputType);
                Same(differences, $"{methodPath} client streaming", em.ClientStreaming, am.ClientStreaming);
                Same(differences, $"{methodPath} server streaming", em.ServerStreaming, am.ServerStreaming);
                Same(differences, $"{methodPath} options", Show(em.Options), Show(am.Options));
            });
        });
        return differences;
    }

    private static void CompareMessages(List<string> differences, string scope, IList<DescriptorProto> expected, IList<DescriptorProto> actual) =>
        ByName(differences, scope, "message", expected, actual, m => m.Name, (path, e, a) =>
        {
            Same(differences, $"{path} options", Show(e.Options), Show(a.Options));
            Same(differences, $"{path} oneofs", string.Join(", ", e.OneofDecl.Select(o => o.Name)), string.Join(", ", a.OneofDecl.Select(o => o.Name)));
            ByName(differences, path, "field", e.Field, a.Field, f => f.Name, (fieldPath, ef, af) =>
            {
                Same(differences, $"{fieldPath} number", ef.Number, af.Number);
                Same(differences, $"{fieldPath} type", ef.Type, af.Type);
                Same(differences, $"{fieldPath} label", ef.Label, af.Label);
                Same(differences, $"{fieldPath} type name", ef.TypeName, af.TypeName);
                Same(differences, $"{fieldPath} oneof", OneofOf(e, ef), OneofOf(a, af));
                Same(differences, $"{fieldPath} proto3 optional", ef.Proto3Optional, af.Proto3Optional);
                Same(differences, $"{fieldPath} options", Show(ef.Options), Show(af.Options));
            });
            CompareMessages(differences, path, e.NestedType, a.NestedType);
            CompareEnums(differences, path, e.EnumType, a.EnumType);
            Same(differences, $"{path} extensions", e.Extension.Count, a.Extension.Count);
        });

    private static void CompareEnums(List<string> differences, string scope, IList<EnumDescriptorProto> expected, IList<EnumDescriptorProto> actual) =>
        ByName(differences, scope, "enum", expected, actual, e => e.Name, (path, e, a) =>
        {
            Same(differences, $"{path} options", Show(e.Options), Show(a.Options));
            ByName(differences, path, "enum value", e.Value, a.Value, v => v.Name, (valuePath, ev, av) =>
                Same(differences, $"{valuePath} number", ev.Number, av.Number));
        });

    private static void ByName<T>(List<string> differences, string scope, string kind, IList<T> expected, IList<T> actual, Func<T, string> name, Action<string, T, T> compare)
    {
        var actualByName = actual.ToDictionary(name, StringComparer.Ordinal);
        foreach (var item in expected)
        {
            var path = $"{scope}.{name(item)}";
            if (actualByName.Remove(name(item), out var match))
            {
                compare(path, item, match);
            }
            else
            {
                differences.Add($"{kind} {path} is missing");
            }
        }
        differences.AddRange(actualByName.Keys.Select(extra => $"{kind} {scope}.{extra} is not in the published proto"));
    }

    private static string OneofOf(DescriptorProto message, FieldDescriptorProto field) =>
        field.HasOneofIndex ? message.OneofDecl[field.OneofIndex].Name : "";

    private static string Show(IMessage? options) => options?.ToString() ?? "(none)";

    private static void Same<T>(List<string> differences, string what, T expected, T actual)
    {
        if (!EqualityComparer<T>.Default.Equals(expected, actual))
        {
            differences.Add($"{what}: published '{expected}', ours '{actual}'");
        }
    }

    private static string FindProtoc()
    {
        var candidates = new List<string>();
        if (Environment.GetEnvironmentVariable("PROTOC") is { Length: > 0 } fromEnvironment)
        {
            candidates.Add(fromEnvironment);
        }
        // The protoc that Grpc.Tools ships (the one that compiles LabMesh's protos), then Debian's.
        var packages = Environment.GetEnvironmentVariable("NUGET_PACKAGES") is { Length: > 0 } nugetPackages
            ? nugetPackages
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
        var grpcTools = Path.Combine(packages, "grpc.tools");
        if (Directory.Exists(grpcTools))
        {
            var platform = OperatingSystem.IsWindows() ? "windows_x64" : OperatingSystem.IsMacOS() ? "macosx_x64" : "linux_x64";
            candidates.AddRange(Directory.GetDirectories(grpcTools)
                .OrderByDescending(d => d, StringComparer.Ordinal)
                .Select(d => Path.Combine(d, "tools", platform, OperatingSystem.IsWindows() ? "protoc.exe" : "protoc")));
        }
        candidates.Add("/usr/bin/protoc");
        return candidates.FirstOrDefault(File.Exists)
            ?? throw new InvalidOperationException($"No protoc found (looked at {string.Join(", ", candidates)}); set PROTOC.");
    }
}
