using LabMesh.ServiceDefaults.Peers;

namespace LabMesh.Cli.Mesh;

/// <summary>
/// Where the mesh is: <c>http://host:port</c> (h2c), <c>https://host:port</c> (TLS),
/// <c>dns:///host:port</c> (round-robin over every address of the name, plaintext),
/// <c>ipv4:host:port,host:port</c> (round-robin over the list, plaintext) or the grpcurl-style
/// <c>host:port</c>, read as h2c.
/// </summary>
internal static class MeshTarget
{
    public const string Default = "http://127.0.0.1:5000";

    /// <summary>The address a channel is created for, or why <paramref name="target"/> is not one.</summary>
    public static bool TryNormalize(string? target, out string address, out string error)
    {
        address = "";
        error = "";
        var value = target?.Trim() ?? "";
        if (MeshChannels.IsBalanced(value))
        {
            address = value;
            return true;
        }

        if (!value.Contains("://", StringComparison.Ordinal))
        {
            value = "http://" + value;
        }

        if (Uri.TryCreate(value, UriKind.Absolute, out var uri)
            && (uri.Scheme == Uri.UriSchemeHttp || uri.Scheme == Uri.UriSchemeHttps)
            && uri.Host.Length > 0 && uri.AbsolutePath == "/" && uri.Query.Length == 0)
        {
            address = uri.GetLeftPart(UriPartial.Authority);
            return true;
        }

        error = $"'{target}' is not a target: use http://HOST:PORT (h2c), https://HOST:PORT (TLS), dns:///HOST:PORT, ipv4:HOST:PORT,HOST:PORT or HOST:PORT.";
        return false;
    }
}
