using Google.Protobuf;
using Google.Protobuf.Reflection;

namespace Grpc.Reflection.Internal;

/// <summary>
/// Every proto file reachable from the served services (their files and all transitive imports, well-known
/// types included), indexed by file name, by fully qualified symbol and by extension.
/// </summary>
internal sealed class DescriptorIndex
{
    private readonly Dictionary<string, FileDescriptor> _files = new(StringComparer.Ordinal);
    private readonly Dictionary<string, FileDescriptor> _symbols = new(StringComparer.Ordinal);
    private readonly Dictionary<string, SortedDictionary<int, FileDescriptor>> _extensionsByExtendee = new(StringComparer.Ordinal);
    private readonly HashSet<string> _messageTypes = new(StringComparer.Ordinal);

    private DescriptorIndex(IReadOnlyList<string> serviceNames) => ServiceNames = serviceNames;

    /// <summary>The services to list, in the order they were mapped.</summary>
    public IReadOnlyList<string> ServiceNames { get; }

    /// <summary>Indexes the files of <paramref name="descriptors"/>; <paramref name="serviceNames"/> is what gets listed.</summary>
    public static DescriptorIndex Build(IEnumerable<string> serviceNames, IEnumerable<ServiceDescriptor> descriptors)
    {
        var index = new DescriptorIndex([.. serviceNames.Distinct(StringComparer.Ordinal)]);
        foreach (var descriptor in descriptors)
        {
            index.AddFile(descriptor.File);
        }
        return index;
    }

    /// <summary>The file with this name (as written in import statements), with its dependencies.</summary>
    public IReadOnlyList<ByteString>? FileByName(string fileName) =>
        _files.TryGetValue(fileName, out var file) ? WithDependencies(file) : null;

    /// <summary>The file declaring this fully qualified symbol (a leading dot is accepted), with its dependencies.</summary>
    public IReadOnlyList<ByteString>? FileContainingSymbol(string symbol) =>
        _symbols.TryGetValue(symbol.TrimStart('.'), out var file) ? WithDependencies(file) : null;

    /// <summary>The file declaring extension <paramref name="number"/> of <paramref name="extendee"/>, with its dependencies.</summary>
    public IReadOnlyList<ByteString>? FileContainingExtension(string extendee, int number) =>
        _extensionsByExtendee.TryGetValue(extendee.TrimStart('.'), out var byNumber) && byNumber.TryGetValue(number, out var file)
            ? WithDependencies(file)
            : null;

    /// <summary>The field numbers of every known extension of a message type; null when the type is unknown.</summary>
    public IReadOnlyList<int>? ExtensionNumbersOf(string messageType)
    {
        var name = messageType.TrimStart('.');
        if (!_messageTypes.Contains(name))
        {
            return null;
        }
        return _extensionsByExtendee.TryGetValue(name, out var byNumber) ? [.. byNumber.Keys] : [];
    }

    /// <summary>The file first, then every file it imports, directly or not, each once.</summary>
    private static List<ByteString> WithDependencies(FileDescriptor file)
    {
        var result = new List<ByteString>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var pending = new Stack<FileDescriptor>();
        pending.Push(file);
        while (pending.Count > 0)
        {
            var next = pending.Pop();
            if (!seen.Add(next.Name))
            {
                continue;
            }
            result.Add(next.SerializedData);
            for (var i = next.Dependencies.Count - 1; i >= 0; i--)
            {
                pending.Push(next.Dependencies[i]);
            }
        }
        return result;
    }

    private void AddFile(FileDescriptor file)
    {
        if (!_files.TryAdd(file.Name, file))
        {
            return;
        }
        foreach (var dependency in file.Dependencies)
        {
            AddFile(dependency);
        }
        foreach (var service in file.Services)
        {
            AddSymbol(service.FullName, file);
            foreach (var method in service.Methods)
            {
                AddSymbol(method.FullName, file);
            }
        }
        foreach (var message in file.MessageTypes)
        {
            AddMessage(message, file);
        }
        foreach (var enumType in file.EnumTypes)
        {
            AddEnum(enumType, file);
        }
        AddExtensions(file.Extensions, file);
    }

    private void AddMessage(MessageDescriptor message, FileDescriptor file)
    {
        AddSymbol(message.FullName, file);
        _messageTypes.Add(message.FullName);
        foreach (var field in message.Fields.InDeclarationOrder())
        {
            AddSymbol(field.FullName, file);
        }
        foreach (var oneof in message.Oneofs)
        {
            AddSymbol(oneof.FullName, file);
        }
        foreach (var nested in message.NestedTypes)
        {
            AddMessage(nested, file);
        }
        foreach (var enumType in message.EnumTypes)
        {
            AddEnum(enumType, file);
        }
        AddExtensions(message.Extensions, file);
    }

    private void AddEnum(EnumDescriptor enumType, FileDescriptor file)
    {
        AddSymbol(enumType.FullName, file);
        // Protobuf scopes enum values as siblings of their enum ("pkg.Msg.VALUE"); the value's own
        // descriptor may name it under the enum ("pkg.Msg.Enum.VALUE"). Accept both.
        var parentScope = enumType.ContainingType?.FullName ?? file.Package;
        foreach (var value in enumType.Values)
        {
            AddSymbol(value.FullName, file);
            AddSymbol(parentScope.Length == 0 ? value.Name : $"{parentScope}.{value.Name}", file);
        }
    }

    private void AddExtensions(ExtensionCollection extensions, FileDescriptor file)
    {
        foreach (var extension in extensions.UnorderedExtensions)
        {
            AddSymbol(extension.FullName, file);
            var extendee = extension.ExtendeeType.FullName;
            if (!_extensionsByExtendee.TryGetValue(extendee, out var byNumber))
            {
                _extensionsByExtendee[extendee] = byNumber = [];
            }
            byNumber.TryAdd(extension.FieldNumber, file);
        }
    }

    // First declaration wins: protoc refuses duplicate symbols within one pool, so a clash can only come
    // from two unrelated generated assemblies, where either answer is as good as the other.
    private void AddSymbol(string fullName, FileDescriptor file) => _symbols.TryAdd(fullName, file);
}
