using System.Net;

namespace LabMesh.Notification.Webhooks;

/// <summary>
/// A webhook target that <see cref="WebhookTargetPolicy"/> refuses to connect to: its host resolved to
/// an address that is not public and not allow-listed. A delivery that meets it is dead-lettered, not
/// retried (<see cref="RetrySchedule"/>).
/// </summary>
/// <remarks>Thrown from the connect callback, it reaches the caller of HttpClient wrapped in an
/// <see cref="HttpRequestException"/>: <see cref="Find"/> digs it out.</remarks>
public sealed class WebhookTargetRefusedException : Exception
{
    public WebhookTargetRefusedException()
        : this("The webhook target is refused.")
    {
    }

    public WebhookTargetRefusedException(string message)
        : base(message)
    {
        Host = "";
    }

    public WebhookTargetRefusedException(string message, Exception innerException)
        : base(message, innerException)
    {
        Host = "";
    }

    /// <param name="host">The host as the URL names it.</param>
    /// <param name="address">The first address of it that is refused.</param>
    /// <param name="kind">What kind of address that is.</param>
    public WebhookTargetRefusedException(string host, IPAddress address, WebhookAddressKind kind)
        : base($"Webhook target '{host}' is refused: it resolves to {address}, {Describe(kind)} address that is not allow-listed.")
    {
        Host = host;
        Address = address;
        Kind = kind;
    }

    /// <summary>The host as the URL names it.</summary>
    public string Host { get; }

    /// <summary>The refused address, when the refusal is about one.</summary>
    public IPAddress? Address { get; }

    /// <summary>What kind of address <see cref="Address"/> is.</summary>
    public WebhookAddressKind Kind { get; }

    /// <summary>The refusal in <paramref name="exception"/> or among its inner exceptions, if any.</summary>
    public static WebhookTargetRefusedException? Find(Exception? exception)
    {
        for (var e = exception; e is not null; e = e.InnerException)
        {
            if (e is WebhookTargetRefusedException refused)
            {
                return refused;
            }
        }
        return null;
    }

    private static string Describe(WebhookAddressKind kind) => kind switch
    {
        WebhookAddressKind.Loopback => "a loopback",
        WebhookAddressKind.Private => "a private",
        WebhookAddressKind.LinkLocal => "a link-local",
        WebhookAddressKind.SharedAddressSpace => "a shared (carrier-grade NAT)",
        WebhookAddressKind.UniqueLocal => "a unique-local",
        WebhookAddressKind.Unspecified => "an unspecified",
        WebhookAddressKind.Multicast => "a multicast",
        WebhookAddressKind.Reserved => "a reserved",
        _ => "a public",
    };
}
