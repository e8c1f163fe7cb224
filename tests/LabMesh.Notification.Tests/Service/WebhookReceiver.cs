using System.Collections.Concurrent;
using System.Net;
using LabMesh.Contracts.Common.V1;
using LabMesh.Notification.Webhooks;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Logging;

namespace LabMesh.Notification.Tests.Service;

/// <summary>One request the receiver got: the Standard Webhooks headers and the exact body.</summary>
public sealed record ReceivedWebhook(string Id, string Timestamp, string Signature, byte[] Body, DateTimeOffset At)
{
    public Event Event => WebhookPayload.Parse(Body);

    public bool VerifiesWith(string secret) =>
        WebhookSigner.Verify(Id, Timestamp, Signature, Body, secret, DateTimeOffset.UtcNow);
}

/// <summary>
/// A real HTTP/1.1 server on a loopback port standing for a customer's webhook endpoint: it records
/// every request and answers what <see cref="Respond"/> says for the n-th request (1-based), after
/// <see cref="Hold"/> when set.
/// </summary>
public sealed class WebhookReceiver : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly ConcurrentQueue<ReceivedWebhook> _received = new();
    private int _count;

    private WebhookReceiver(WebApplication app) => _app = app;

    public Func<int, ReceivedWebhook, (int Status, string? RetryAfter)> Respond { get; set; } = (_, _) => (200, null);

    /// <summary>When set, each request waits for it (or the client's cancellation) before answering.</summary>
    public Func<int, Task>? Hold { get; set; }

    public string Url => new Uri(_app.Urls.Single()).GetLeftPart(UriPartial.Authority) + "/hooks/labmesh";

    public IReadOnlyList<ReceivedWebhook> Received => [.. _received];

    public static async Task<WebhookReceiver> StartAsync(int port = 0)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, port, l => l.Protocols = HttpProtocols.Http1));
        var app = builder.Build();
        var receiver = new WebhookReceiver(app);
        app.MapPost("/hooks/labmesh", receiver.HandleAsync);
        await app.StartAsync().WaitAsync(TimeSpan.FromSeconds(30));
        return receiver;
    }

    public ValueTask DisposeAsync() => _app.DisposeAsync();

    private async Task HandleAsync(HttpContext context)
    {
        using var body = new MemoryStream();
        await context.Request.Body.CopyToAsync(body, context.RequestAborted);
        var received = new ReceivedWebhook(
            context.Request.Headers[WebhookSigner.IdHeader].ToString(),
            context.Request.Headers[WebhookSigner.TimestampHeader].ToString(),
            context.Request.Headers[WebhookSigner.SignatureHeader].ToString(),
            body.ToArray(),
            DateTimeOffset.UtcNow);
        _received.Enqueue(received);
        var n = Interlocked.Increment(ref _count);
        if (Hold is { } hold)
        {
            await hold(n).WaitAsync(context.RequestAborted);
        }

        var (status, retryAfter) = Respond(n, received);
        context.Response.StatusCode = status;
        if (retryAfter is not null)
        {
            context.Response.Headers.RetryAfter = retryAfter;
        }
    }
}
