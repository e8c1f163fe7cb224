namespace Grpc.Core;

/// <summary>
/// Whether a channel uses TLS. Needed for targets whose address does not say it, such as
/// <c>dns:///svc:5000</c>; an <c>http://</c> or <c>https://</c> address already does.
/// </summary>
/// <remarks>
/// The subset of grpc-dotnet's type that LabMesh uses: <see cref="Insecure"/> and <see cref="SecureSsl"/>.
/// Certificates and client certificates come from the channel's <see cref="System.Net.Http.SocketsHttpHandler"/>.
/// </remarks>
public abstract class ChannelCredentials
{
    private protected ChannelCredentials()
    {
    }

    /// <summary>Plaintext HTTP/2 (h2c with prior knowledge).</summary>
    public static ChannelCredentials Insecure { get; } = new Credentials(isSecure: false);

    /// <summary>TLS, with the target's host name as SNI and as the name the certificate must carry.</summary>
    public static ChannelCredentials SecureSsl { get; } = new Credentials(isSecure: true);

    internal abstract bool IsSecure { get; }

    private sealed class Credentials(bool isSecure) : ChannelCredentials
    {
        internal override bool IsSecure => isSecure;
    }
}
