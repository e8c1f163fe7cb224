using System.Collections.Frozen;
using System.Reflection;
using Google.Protobuf.Reflection;

namespace LabMesh.Core.Vocabulary;

/// <summary>
/// The word of a proto enum value, read from the generated code's original names so the .proto file is
/// the one list: <c>LIFECYCLE_STATUS_PARTIAL_RESULTS</c> is "partial_results" (the enum's prefix, taken
/// from its zero value <c>..._UNSPECIFIED</c>, dropped; lower case). The zero value and numbers the
/// contract does not name are "".
/// </summary>
public static class EnumWords
{
    public static string Word<T>(T value) where T : struct, Enum =>
        Table<T>.Words.TryGetValue(value, out var word) ? word : "";

    /// <summary>The value a word names; false for "" and for words the contract does not have.</summary>
    public static bool TryParse<T>(string? word, out T value) where T : struct, Enum =>
        Table<T>.Values.TryGetValue(word ?? "", out value);

    private static class Table<T> where T : struct, Enum
    {
        public static readonly FrozenDictionary<T, string> Words = Build();

        public static readonly FrozenDictionary<string, T> Values = Words.ToFrozenDictionary(w => w.Value, w => w.Key, StringComparer.Ordinal);

        private static FrozenDictionary<T, string> Build()
        {
            var names = typeof(T).GetFields(BindingFlags.Public | BindingFlags.Static)
                .Select(f => (Value: (T)f.GetValue(null)!, Name: f.GetCustomAttribute<OriginalNameAttribute>()?.Name
                    ?? throw new InvalidOperationException($"{typeof(T).Name} is not a generated proto enum.")))
                .ToList();
            var zero = names.Single(n => Convert.ToInt32(n.Value, System.Globalization.CultureInfo.InvariantCulture) == 0).Name;
            const string Unspecified = "UNSPECIFIED";
            if (!zero.EndsWith(Unspecified, StringComparison.Ordinal))
            {
                throw new InvalidOperationException($"{typeof(T).Name}'s zero value {zero} is not <PREFIX>_{Unspecified}.");
            }

            var prefix = zero[..^Unspecified.Length];
            return names
                .Where(n => n.Name != zero)
                .ToFrozenDictionary(n => n.Value, n => n.Name[prefix.Length..].ToLowerInvariant());
        }
    }
}
