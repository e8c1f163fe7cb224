using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Text;
using LabMesh.Notification.Webhooks;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Logging;

namespace LabMesh.Bench.Notification;

/// <summary>
/// A customer's webhook endpoint: Kestrel on a loopback port (HTTP/1.1, as webhook targets are), one
/// POST route that reads the body and answers 200 at once. It counts, per round, each distinct
/// <c>webhook-id</c> once (a repeat is a duplicate), when each event id (the first <c>"id"</c> of the
/// body, which is <c>data.id</c>) first arrived, how many requests were in the handler at once at
/// most, and how many connections were used.
/// </summary>
internal sealed class WebhookSink : IAsyncDisposable
{
    private static readonly byte[] IdProperty = Encoding.ASCII.GetBytes("\"id\"");

    private readonly WebApplication _app;
    private Round _round = new(int.MaxValue);

    private WebhookSink(WebApplication app) => _app = app;

    public string Url => new Uri(_app.Urls.Single()).GetLeftPart(UriPartial.Authority) + "/hooks/labmesh";

    public Round Current => Volatile.Read(ref _round);

    public static async Task<WebhookSink> StartAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.AddServerHeader = false;
            k.Listen(IPAddress.Loopback, 0, l => l.Protocols = HttpProtocols.Http1);
        });
        var app = builder.Build();
        var sink = new WebhookSink(app);
        app.MapPost("/hooks/labmesh", sink.HandleAsync);
        await app.StartAsync();
        return sink;
    }

    /// <summary>Starts counting afresh; the round is complete when <paramref name="expected"/> distinct webhook ids arrived.</summary>
    public Round Reset(int expected)
    {
        var round = new Round(expected);
        Volatile.Write(ref _round, round);
        return round;
    }

    public ValueTask DisposeAsync() => _app.DisposeAsync();

    private async Task HandleAsync(HttpContext context)
    {
        var round = Current;
        if (!round.Gate.IsCompleted)
        {
            round.Hold();
            await round.Gate;
        }

        round.Enter();
        try
        {
            using var body = new MemoryStream((int)(context.Request.ContentLength ?? 1024));
            await context.Request.Body.CopyToAsync(body, context.RequestAborted);
            var ticks = Stopwatch.GetTimestamp();
            round.Record(context.Request.Headers[WebhookSigner.IdHeader].ToString(), EventId(body.GetBuffer().AsSpan(0, (int)body.Length)), context.Connection.Id, ticks);
            context.Response.StatusCode = StatusCodes.Status200OK;
        }
        finally
        {
            round.Leave();
        }
    }

    // The first "id" property of the body is data.id (the envelope's type and timestamp come first);
    // protobuf's JSON formatter writes a space after the colon.
    private static string EventId(ReadOnlySpan<byte> body)
    {
        var at = body.IndexOf(IdProperty);
        if (at < 0)
        {
            return "";
        }

        var rest = body[(at + IdProperty.Length)..].TrimStart(" :"u8);
        if (rest.IsEmpty || rest[0] != (byte)'"')
        {
            return "";
        }

        rest = rest[1..];
        var end = rest.IndexOf((byte)'"');
        return end < 0 ? "" : Encoding.ASCII.GetString(rest[..end]);
    }

    /// <summary>What the receiver got since the last <see cref="Reset"/>.</summary>
    internal sealed class Round(int expected)
    {
        private readonly ConcurrentDictionary<string, byte> _webhookIds = new(StringComparer.Ordinal);
        private readonly ConcurrentDictionary<string, byte> _connections = new(StringComparer.Ordinal);
        private readonly TaskCompletionSource _complete = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private int _distinct;
        private int _requests;
        private int _duplicates;
        private int _inHandler;
        private int _maxInHandler;
        private int _held;

        /// <summary>First arrival (Stopwatch ticks) per event id.</summary>
        public ConcurrentDictionary<string, long> EventArrivals { get; } = new(StringComparer.Ordinal);

        /// <summary>Arrival (Stopwatch ticks) of each distinct webhook id, in arrival order (roughly).</summary>
        public ConcurrentQueue<long> ArrivalTicks { get; } = new();

        public Task Complete => _complete.Task;

        /// <summary>Requests wait for it before they are counted (the backlog mode holds the first ones).</summary>
        public Task Gate { get; set; } = Task.CompletedTask;

        public int Distinct => Volatile.Read(ref _distinct);

        public int Requests => Volatile.Read(ref _requests);

        public int Duplicates => Volatile.Read(ref _duplicates);

        public int MaxInHandler => Volatile.Read(ref _maxInHandler);

        public int Connections => _connections.Count;

        public void Enter()
        {
            var now = Interlocked.Increment(ref _inHandler);
            int max;
            while (now > (max = Volatile.Read(ref _maxInHandler)) && Interlocked.CompareExchange(ref _maxInHandler, now, max) != max)
            {
            }
        }

        public void Leave() => Interlocked.Decrement(ref _inHandler);

        /// <summary>Requests that waited for <see cref="Gate"/>.</summary>
        public int Held => Volatile.Read(ref _held);

        public void Hold() => Interlocked.Increment(ref _held);

        public void Record(string webhookId, string eventId, string connectionId, long ticks)
        {
            Interlocked.Increment(ref _requests);
            _connections.TryAdd(connectionId, 0);
            if (!_webhookIds.TryAdd(webhookId, 0))
            {
                Interlocked.Increment(ref _duplicates);
                return;
            }

            EventArrivals.TryAdd(eventId, ticks);
            ArrivalTicks.Enqueue(ticks);
            if (Interlocked.Increment(ref _distinct) >= expected)
            {
                _complete.TrySetResult();
            }
        }
    }
}
