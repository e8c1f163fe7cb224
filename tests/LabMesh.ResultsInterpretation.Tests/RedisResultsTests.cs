using LabMesh.Contracts.Common.V1;
using LabMesh.Contracts.Results.V1;
using LabMesh.Contracts.ServiceRequest.V1;
using LabMesh.Messaging.Events;
using LabMesh.Testing;
using Microsoft.Extensions.DependencyInjection;

namespace LabMesh.ResultsInterpretation.Tests;

/// <summary>
/// The three services on PostgreSQL with a real Redis as event bus and status cache, as deployed:
/// critical results go to the stream and to the pub/sub channel of critical results.
/// </summary>
public sealed class RedisResultsTests : IAsyncLifetime
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(20);
    private readonly string _team = "team-" + Guid.NewGuid().ToString("N")[..8];
    private RedisServer _redis = null!;
    private ResultsMesh _mesh = null!;

    private static DateTime Deadline => DateTime.UtcNow.AddSeconds(30);

    public async Task InitializeAsync()
    {
        _redis = await RedisServer.StartNewAsync().WaitAsync(Timeout);
        _mesh = await ResultsMesh.StartAsync(Backend.Postgres, _redis.Configuration).WaitAsync(TimeSpan.FromSeconds(120));
    }

    public async Task DisposeAsync()
    {
        var logs = _mesh.Logs.ToList();
        await _mesh.DisposeAsync();
        await _redis.DisposeAsync();
        foreach (var log in logs)
        {
            log.AssertNoErrors();
        }
    }

    [Fact]
    public async Task CriticalPotassiumInAPartialReport_ReachesTheCriticalChannelAndTheStream_ExactlyOnce()
    {
        await using var listener = await RedisChannelListener.StartAsync(_redis.Port, "labmesh:critical");
        var order = await _mesh.PlaceOrderAsync(_team, "BMP", "CBC");
        var request = ResultsServiceTests.Report(order.Id, ReportStatus.Partial, [order.ServiceRequests[0].Id],
            ResultsServiceTests.Numeric("potassium", 6.9, "mmol/L", 3.5, 5.1));
        var client = _mesh.ResultsClient(_team);

        var report = (await client.SubmitResultsAsync(request, deadline: Deadline)).Report;
        var again = await client.SubmitResultsAsync(request, deadline: Deadline);

        Assert.False(again.Created);
        var message = await listener.Messages.ReadAsync().AsTask().WaitAsync(Timeout);
        var published = Event.Parser.ParseFrom(message.AsSpan(Array.IndexOf(message, (byte)'\n') + 1));
        Assert.Equal(EventTypes.LabTestResultCritical, published.Type);
        Assert.Equal(report.Id, published.CriticalResult.ReportId);
        Assert.Equal("partial", published.CriticalResult.Status);

        var stream = await Eventually.MatchAsync(() => StreamAsync(order.Id), e => e.Count >= 2, Timeout, "the report's events in the stream");
        Assert.Single(stream, e => e.Type == EventTypes.LabTestResultCritical);
        Assert.Single(stream, e => e.Type == EventTypes.LabOrderUpdated);
        await Eventually.HoldsAsync(() => listener.Messages.Count == 0, TimeSpan.FromSeconds(1), "no second critical message");
        var statuses = await _mesh.ServiceRequestClient(_team).BatchGetStatusAsync(
            new BatchGetStatusRequest { Ids = { order.ServiceRequests[0].Id } }, deadline: Deadline);
        Assert.Equal(TaskBusinessStatus.PartialResultsReady, statuses.Statuses[0].TaskBusinessStatus);
    }

    private async Task<List<Event>> StreamAsync(string requisitionId)
    {
        var bus = _mesh.Results.Services.GetRequiredService<IEventBus>();
        Assert.IsType<RedisEventBus>(bus);
        var entries = await bus.ReadAsync(null, 10_000, CancellationToken.None).WaitAsync(Timeout);
        return entries.Select(e => e.Event).Where(e => e.RequisitionId == requisitionId).ToList();
    }
}
