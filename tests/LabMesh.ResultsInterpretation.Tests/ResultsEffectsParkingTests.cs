using LabMesh.Contracts.Requisition.V1;
using LabMesh.Contracts.Results.V1;
using LabMesh.Contracts.Common.V1;
using Dapper;
using LabMesh.Messaging.Storage;
using LabMesh.Testing;
using Microsoft.Extensions.DependencyInjection;

namespace LabMesh.ResultsInterpretation.Tests;

/// <summary>
/// The effects worker against a Requisition service that refuses (a real host whose store lost the
/// requisition) and one that is down: attempts, backoff, parking, and the others going past.
/// Each test starts its own mesh, because it replaces one of the services.
/// </summary>
public sealed class ResultsEffectsParkingTests
{
    private static readonly Dictionary<string, string?> QuickParking = new()
    {
        ["LabMesh:PeerWork:ParkAfter"] = "2",
        ["LabMesh:PeerWork:FirstBackoff"] = "00:00:00.050",
        ["LabMesh:PeerWork:MaxBackoff"] = "00:00:00.100",
        // One item a pass: a parked item that were still selected would hold back every other one.
        ["LabMesh:PeerWork:BatchSize"] = "1",
    };

    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    private static DateTime Deadline => DateTime.UtcNow.AddSeconds(30);

    [Theory]
    [InlineData(Backend.Sqlite)]
    [InlineData(Backend.Postgres)]
    public async Task EffectsWorker_ParksAMilestoneThePeerRefuses_AndTheOthersGoPastIt(Backend backend)
    {
        using var parked = new CounterCapture("labmesh.sync.parked", "labmesh.work.kind");
        await using var mesh = await ResultsMesh.StartAsync(backend, resultsSettings: QuickParking).WaitAsync(TimeSpan.FromSeconds(120));
        var team = "team-" + Guid.NewGuid().ToString("N")[..8];
        var client = mesh.ResultsClient(team);
        var refused = await mesh.PlaceOrderAsync(team, "BMP");
        var refusedReport = (await client.SubmitResultsAsync(ResultsServiceTests.Report(refused.Id, ReportStatus.Final, [refused.ServiceRequests[0].Id],
            ResultsServiceTests.Numeric("sodium", 140, "mmol/L", 135, 145)), deadline: Deadline)).Report;

        // The Requisition service comes back without its store: it refuses the amendment's milestone (NOT_FOUND) for good.
        await mesh.RestartRequisitionsWithNewStoreAsync();
        await client.AmendResultsAsync(Amendment(refusedReport), deadline: Deadline);
        await Eventually.HoldsAsync(
            () => mesh.Results.Logs.Records.Any(r => r.Message.StartsWith($"Parked {ResultsEffects.StageKind} {refused.Id} ", StringComparison.Ordinal)),
            Timeout, "the parked log line");
        var item = Assert.Single((await client.ListParkedWorkAsync(new ListParkedWorkRequest(), deadline: Deadline)).ParkedWork);
        Assert.Equal((ResultsEffects.StageKind, refused.Id, 2, "NOT_FOUND"), (item.Kind, item.ItemId, item.Refusals, item.LastError));
        Assert.True(parked.Sum(ResultsEffects.StageKind) >= 1);

        // Another requisition's amendment, made while the Requisition service was down, is brought in line past it.
        var other = await mesh.PlaceOrderAsync(team, "BMP");
        var otherReport = (await client.SubmitResultsAsync(ResultsServiceTests.Report(other.Id, ReportStatus.Final, [other.ServiceRequests[0].Id],
            ResultsServiceTests.Numeric("sodium", 140, "mmol/L", 135, 145)), deadline: Deadline)).Report;
        await mesh.StopRequisitionsAsync();
        try
        {
            await client.AmendResultsAsync(Amendment(otherReport), deadline: Deadline);
        }
        finally
        {
            await mesh.RestartRequisitionsAsync();
        }

        var requisitions = mesh.RequisitionClient(team);
        await Eventually.MatchAsync(
            async () => (await requisitions.GetRequisitionStatusAsync(new GetRequisitionStatusRequest { Id = other.Id }, deadline: Deadline)).Status,
            s => s.LifecycleStatus == LifecycleStatus.ResultsAmended, Timeout, "the other requisition to hear of its amendment");
        Assert.Single((await client.ListParkedWorkAsync(new ListParkedWorkRequest(), deadline: Deadline)).ParkedWork);

        // Retried by an admin once the cause is fixed (here: the Requisition service has its store back), it lands.
        await mesh.RestartRequisitionsWithFirstStoreAsync();
        await client.RetryParkedWorkAsync(new RetryParkedWorkRequest { Kind = ResultsEffects.StageKind, ItemId = refused.Id }, deadline: Deadline);
        await Eventually.MatchAsync(
            async () => (await requisitions.GetRequisitionStatusAsync(new GetRequisitionStatusRequest { Id = refused.Id }, deadline: Deadline)).Status,
            s => s.LifecycleStatus == LifecycleStatus.ResultsAmended, Timeout, "the retried milestone to land");
        Assert.Empty((await client.ListParkedWorkAsync(new ListParkedWorkRequest(), deadline: Deadline)).ParkedWork);

        // Landed, its attempts are forgotten in the write that notes the milestone heard.
        var store = mesh.Results.Services.GetRequiredKeyedService<Database>(ResultsStore.ServiceName);
        await Eventually.HoldsAsync(async () =>
        {
            await using var connection = await store.OpenAsync(CancellationToken.None);
            return await connection.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM peer_work WHERE item_id = @id", new { id = refused.Id }) == 0;
        }, Timeout, "the milestone's attempts to be forgotten");
        mesh.Results.Logs.AssertNoErrors();
    }

    private static AmendResultsRequest Amendment(Report report)
    {
        var amend = new AmendResultsRequest
        {
            RequestId = Guid.NewGuid().ToString(),
            ReportId = report.Id,
            Reason = "sodium re-measured",
            Metadata = report.Metadata.Clone(),
        };
        amend.Results.Add(ResultsServiceTests.Numeric("sodium", 118, "mmol/L", 135, 145));
        return amend;
    }
}
