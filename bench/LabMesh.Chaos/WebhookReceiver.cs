using System.Collections.Concurrent;
using System.Net;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Logging;

namespace LabMesh.Chaos;

/// <summary>
/// The webhook receiver: Kestrel on a loopback port of this process, answering 200 to every POST and keeping,
/// per event id (the body's <c>data.id</c>, the event envelope), every <c>webhook-id</c> it arrived with and how many times.
/// </summary>
internal sealed class WebhookReceiver : IAsyncDisposable
{
    private readonly WebApplication _app;

    private WebhookReceiver(WebApplication app) => _app = app;

    public string Url => new Uri(_app.Urls.Single()).GetLeftPart(UriPartial.Authority) + "/hooks/chaos";

    /// <summary>Event id to the webhook-ids it came with, one entry per POST.</summary>
    public ConcurrentDictionary<string, ConcurrentQueue<string>> Deliveries { get; } = new(StringComparer.Ordinal);

    public int Posts => Deliveries.Values.Sum(q => q.Count);

    public static async Task<WebhookReceiver> StartAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0, l => l.Protocols = HttpProtocols.Http1));
        var app = builder.Build();
        var receiver = new WebhookReceiver(app);
        app.MapPost("/hooks/chaos", receiver.HandleAsync);
        await app.StartAsync();
        return receiver;
    }

    public ValueTask DisposeAsync() => _app.DisposeAsync();

    private async Task HandleAsync(HttpContext context)
    {
        using var body = await JsonDocument.ParseAsync(context.Request.Body, cancellationToken: context.RequestAborted);
        if (body.RootElement.TryGetProperty("data", out var data) && data.TryGetProperty("id", out var id) && id.GetString() is { Length: > 0 } eventId)
        {
            Deliveries.GetOrAdd(eventId, _ => new ConcurrentQueue<string>()).Enqueue(context.Request.Headers["webhook-id"].ToString());
        }

        context.Response.StatusCode = StatusCodes.Status200OK;
    }
}
