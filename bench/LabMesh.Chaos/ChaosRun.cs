using System.Diagnostics;
using Grpc.Core;
using Grpc.Net.Client;
using LabMesh.Contracts.Notification.V1;
using LabMesh.Contracts.Requisition.V1;
using LabMesh.Contracts.Results.V1;
using LabMesh.Messaging.Events;
using LabMesh.Security.Identity;
using LabMesh.Testing;

namespace LabMesh.Chaos;

/// <summary>A run that cannot go on (the topology did not start, the set-up failed).</summary>
internal sealed class ChaosFailedException(string message) : Exception(message);

/// <summary>One run: start-up times at idle, the load under a fault schedule, the verification and the table.</summary>
internal sealed class ChaosRun(LocalTopology topology, Options options, Action<string> log)
{
    private static readonly TimeSpan Settle = TimeSpan.FromSeconds(120);

    private readonly Dictionary<string, double?> _idleStarts = [];
    private readonly Dictionary<string, double?> _loadedStarts = [];
    private readonly List<double?> _bareStarts = [];
    private readonly List<string> _faults = [];

    /// <summary>Runs it; true when every check passed.</summary>
    public async Task<bool> RunAsync(CancellationToken cancellationToken)
    {
        var up = Stopwatch.StartNew();
        if ((await topology.UpAsync(cancellationToken)).ExitCode != 0)
        {
            throw new ChaosFailedException("up.sh failed (its output is in the scripts' log)");
        }

        log(F($"  up.sh: every part SERVING after {up.Elapsed.TotalSeconds:0} s"));
        log("1. Each replica restarted at idle (ctl.sh stop, then ctl.sh start): process start -> grpc.health.v1 SERVING; first a bare grpc-dotnet host, three times");
        for (var i = 0; i < 3; i++)
        {
            _bareStarts.Add(await BareGrpcHost.TimeAsync(options.PortBase + 95, cancellationToken));
            log(F($"   {"bare grpc-dotnet host",-24} {Seconds(_bareStarts[^1])}"));
        }

        foreach (var part in LocalTopology.ReplicaNames)
        {
            await topology.CtlRunAsync("stop", part, null, cancellationToken);
            _idleStarts[part] = await topology.StartTimedAsync(part, cancellationToken);
            log(F($"   {part,-24} {Seconds(_idleStarts[part])}"));
        }

        if (options.StartupOnly)
        {
            return _idleStarts.Values.All(s => s is not null);
        }

        var team = "chaos-" + Guid.NewGuid().ToString("N")[..8];
        Metadata headers, admin, lab;
        using (var key = SigningKey.FromPem("labmesh-local", topology.KeyPem, "signing-key.pem"))
        {
            // A clinician of the run's team places and follows, the lab's integration (a service caller) submits results,
            // and only an admin of the team manages webhook endpoints.
            headers = new Metadata { { "authorization", "Bearer " + key.Mint(new TokenIdentity(team, CallerRole.Clinician, "chaos", null), "labmesh", "labmesh", TimeSpan.FromHours(4)) } };
            lab = new Metadata { { "authorization", "Bearer " + key.Mint(new TokenIdentity(team, CallerRole.Service, "chaos-lab", null), "labmesh", "labmesh", TimeSpan.FromHours(4)) } };
            admin = new Metadata { { "authorization", "Bearer " + key.Mint(new TokenIdentity(team, CallerRole.Admin, "chaos-admin", null), "labmesh", "labmesh", TimeSpan.FromHours(4)) } };
        }

        using var channel = GrpcChannel.ForAddress(topology.Gateway);
        await using var receiver = await WebhookReceiver.StartAsync();
        var notifications = new NotificationService.NotificationServiceClient(channel);
        var driver = new Driver(channel, headers, lab, options.CriticalEvery);
        var endpoint = new CreateWebhookEndpointRequest { RequestId = "chaos-" + team, Url = receiver.Url, Description = "LabMesh.Chaos receiver" };
        endpoint.EventTypes.Add(EventTypes.LabTestResultCritical);
        _ = await driver.CallAsync("CreateWebhookEndpoint", d => notifications.CreateWebhookEndpointAsync(endpoint, admin, d), cancellationToken)
            ?? throw new ChaosFailedException("CreateWebhookEndpoint failed: " + string.Join("; ", driver.FinalFailures.Keys));
        await using var follower = await Follower.StartAsync(channel, headers);

        log("");
        log(F($"2. Load through the gateway for {options.DurationSeconds:0} s: {options.Workers} callers, each CreateRequisition (place) then SubmitResults, one report in {options.CriticalEvery} critical; team {team}; webhook receiver {receiver.Url}"));
        var drive = Stopwatch.StartNew();
        using var stopDriving = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var driving = driver.RunAsync(options.Workers, stopDriving.Token);
        try
        {
            await InjectAsync(drive, cancellationToken);
            var left = TimeSpan.FromSeconds(options.DurationSeconds) - drive.Elapsed;
            if (left > TimeSpan.Zero)
            {
                await Task.Delay(left, cancellationToken);
            }
        }
        finally
        {
            await stopDriving.CancelAsync();
            await driving;
        }

        log(F($"   load ended after {drive.Elapsed.TotalSeconds:0} s: {driver.Requisitions.Count} requisitions and {driver.Reports.Count} reports returned OK; {driver.Retries} calls sent again; {driver.Failed} failed for good"));
        return await VerifyAsync(channel, headers, driver, receiver, follower, cancellationToken);
    }

    // Twelve faults spread over the load: SIGKILL of each replica in turn (restarted after --down s and timed to
    // SERVING), Redis SHUTDOWN and SIGKILL, PostgreSQL fast stop and SIGKILL of its postmaster.
    private async Task InjectAsync(Stopwatch drive, CancellationToken cancellationToken)
    {
        List<(string Action, string Part)> schedule =
        [
            .. LocalTopology.ReplicaNames.Select(p => ("kill", p)),
            ("stop", "redis"), ("kill", "redis"), ("stop", "postgres"), ("kill", "postgres"),
        ];
        var interval = TimeSpan.FromSeconds(options.DurationSeconds / (schedule.Count + 1));
        var down = TimeSpan.FromSeconds(options.DownSeconds);
        for (var i = 0; i < schedule.Count; i++)
        {
            var due = interval * (i + 1);
            if (due > drive.Elapsed)
            {
                await Task.Delay(due - drive.Elapsed, cancellationToken);
            }

            var (action, part) = schedule[i];
            var at = drive.Elapsed;
            await topology.CtlRunAsync(action, part, null, cancellationToken);
            await Task.Delay(down, cancellationToken);
            string back;
            if (part is "redis" or "postgres")
            {
                var timer = Stopwatch.StartNew();
                var code = (await topology.CtlRunAsync("start", part, null, cancellationToken)).ExitCode;
                back = code == 0 ? F($"answering {timer.Elapsed.TotalSeconds:0.0} s after ctl.sh start") : F($"ctl.sh start exited {code}");
            }
            else
            {
                _loadedStarts[part] = await topology.StartTimedAsync(part, cancellationToken);
                back = "SERVING " + Seconds(_loadedStarts[part]) + " after its process started";
            }

            var line = F($"{at.TotalSeconds,5:0} s  ctl.sh {action} {part}; down {options.DownSeconds:0.#} s; {back}");
            _faults.Add(line);
            log("   " + line);
        }
    }

    private async Task<bool> VerifyAsync(GrpcChannel channel, Metadata headers, Driver driver, WebhookReceiver receiver, Follower follower, CancellationToken cancellationToken)
    {
        log("");
        log(F($"3. Verification (waiting up to {Settle.TotalSeconds:0} s for the critical results to settle)"));
        var requisitions = new RequisitionService.RequisitionServiceClient(channel);
        var results = new ResultsInterpretationService.ResultsInterpretationServiceClient(channel);
        var notifications = new NotificationService.NotificationServiceClient(channel);
        var reader = new Driver(channel, headers, headers, options.CriticalEvery);

        var criticalReports = driver.Reports.Where(r => r.Critical).ToList();
        var criticalRequisitions = criticalReports.Select(r => r.Requisition).ToHashSet(StringComparer.Ordinal);
        List<LabMesh.Contracts.Common.V1.Event> onStream = [];
        List<CriticalResultAcknowledgement> inStore = [];
        var settle = Stopwatch.StartNew();
        while (true)
        {
            onStream = await StreamAsync(notifications, headers, reader, cancellationToken);
            inStore = await OpenCriticalAsync(notifications, headers, reader, cancellationToken);
            var settled = criticalRequisitions.All(r => onStream.Any(e => e.RequisitionId == r))
                && criticalReports.All(r => inStore.Any(c => c.ReportId == r.Report))
                && onStream.All(e => receiver.Deliveries.ContainsKey(e.Id))
                && onStream.All(e => follower.Seen.ContainsKey(e.Id));
            if (settled || settle.Elapsed > Settle)
            {
                break;
            }

            await Task.Delay(1000, cancellationToken);
        }

        log(F($"   settled after {settle.Elapsed.TotalSeconds:0} s"));
        var requisitionsBack = await CountAsync(driver.Requisitions, id => reader.CallAsync("GetRequisition", d => requisitions.GetRequisitionAsync(new GetRequisitionRequest { Id = id }, headers, d), cancellationToken));
        var reportsBack = await CountAsync(driver.Reports.Select(r => r.Report), id => reader.CallAsync("GetReport", d => results.GetReportAsync(new GetReportRequest { Id = id }, headers, d), cancellationToken));

        var streamByRequisition = onStream.GroupBy(e => e.RequisitionId).ToDictionary(g => g.Key, g => g.Count(), StringComparer.Ordinal);
        var criticalOnStream = criticalRequisitions.Count(r => streamByRequisition.ContainsKey(r));
        var twiceOnStream = streamByRequisition.Count(kv => kv.Value > 1);
        var extraOnStream = streamByRequisition.Keys.Count(r => !criticalRequisitions.Contains(r));
        var storeReports = inStore.Select(c => c.ReportId).ToHashSet(StringComparer.Ordinal);
        var criticalInStore = criticalReports.Count(r => storeReports.Contains(r.Report));
        var streamIds = onStream.Select(e => e.Id).ToList();
        var delivered = streamIds.Count(receiver.Deliveries.ContainsKey);
        var repeatedPosts = receiver.Deliveries.Values.Sum(q => q.Count - 1);
        var repeatedWithOtherId = receiver.Deliveries.Count(kv => kv.Value.Distinct(StringComparer.Ordinal).Count() > 1);
        var deliveredUnknown = receiver.Deliveries.Keys.Count(id => !streamIds.Contains(id));
        var followed = streamIds.Count(follower.Seen.ContainsKey);
        var followedTwice = follower.Seen.Count(kv => kv.Value > 1);

        var checks = new List<(string What, string Figure, bool Ok)>
        {
            ("critical results that returned OK (a run without any shows nothing)", F($"{criticalReports.Count}"), criticalReports.Count > 0),
            ("requisitions returned OK, read back (GetRequisition)", F($"{requisitionsBack} / {driver.Requisitions.Count}"), requisitionsBack == driver.Requisitions.Count),
            ("reports returned OK, read back (GetReport)", F($"{reportsBack} / {driver.Reports.Count}"), reportsBack == driver.Reports.Count),
            ("critical results returned OK, on the stream (ListEvents)", F($"{criticalOnStream} / {criticalReports.Count}"), criticalOnStream == criticalReports.Count),
            ("critical results on the stream more than once", F($"{twiceOnStream}"), twiceOnStream == 0),
            ("critical results returned OK, in the store (ListUnacknowledgedCriticalResults)", F($"{criticalInStore} / {criticalReports.Count}"), criticalInStore == criticalReports.Count),
            ("critical events on the stream delivered to the webhook receiver", F($"{delivered} / {streamIds.Count}"), delivered == streamIds.Count),
            ("repeated webhook POSTs (same event again)", F($"{repeatedPosts}"), true),
            ("events POSTed again under a different webhook-id", F($"{repeatedWithOtherId}"), repeatedWithOtherId == 0),
            ("webhook POSTs of events not on the stream", F($"{deliveredUnknown}"), deliveredUnknown == 0),
            ("critical events on the stream seen by the resuming subscriber (no gap)", F($"{followed} / {streamIds.Count}"), followed == streamIds.Count),
            ("events the subscriber saw twice", F($"{followedTwice}"), true),
            ("critical events on the stream from calls that never returned OK", F($"{extraOnStream}"), true),
        };

        log("");
        log("| check | figure | |");
        log("|---|---:|---|");
        foreach (var (what, figure, ok) in checks)
        {
            log($"| {what} | {figure} | {(ok ? "ok" : "FAILED")} |");
        }

        log("");
        log(F($"calls sent again (same request_id), by code: {Codes(driver.RetriedCodes)}; failed for good: {driver.Failed} {string.Join("; ", driver.FinalFailures.Select(kv => F($"{kv.Value} x {kv.Key}")))}"));
        log(F($"subscriber stream ends, by code: {Codes(follower.Breaks)}"));
        log("");
        log("| process | start -> SERVING, idle | after SIGKILL, under load |");
        log("|---|---:|---:|");
        log($"| bare grpc-dotnet host (3 starts) | {string.Join(" / ", _bareStarts.Select(Seconds))} | |");
        foreach (var part in LocalTopology.ReplicaNames)
        {
            log($"| {part} | {Seconds(_idleStarts.GetValueOrDefault(part))} | {Seconds(_loadedStarts.GetValueOrDefault(part))} |");
        }

        return checks.All(c => c.Ok);
    }

    private static async Task<List<LabMesh.Contracts.Common.V1.Event>> StreamAsync(NotificationService.NotificationServiceClient client, Metadata headers, Driver reader, CancellationToken cancellationToken)
    {
        var all = new List<LabMesh.Contracts.Common.V1.Event>();
        var request = new ListEventsRequest { PageSize = 1000, Filter = new EventFilter() };
        request.Filter.Types_.Add(EventTypes.LabTestResultCritical);
        while (true)
        {
            var page = await reader.CallAsync("ListEvents", d => client.ListEventsAsync(request, headers, d), cancellationToken)
                ?? throw new ChaosFailedException("ListEvents failed");
            all.AddRange(page.Events.Select(e => e.Event));
            if (page.Events.Count == 0 || page.NextCursor.Length == 0 || page.NextCursor == request.After)
            {
                return all;
            }

            request.After = page.NextCursor;
        }
    }

    private static async Task<List<CriticalResultAcknowledgement>> OpenCriticalAsync(NotificationService.NotificationServiceClient client, Metadata headers, Driver reader, CancellationToken cancellationToken)
    {
        var all = new List<CriticalResultAcknowledgement>();
        var request = new ListUnacknowledgedCriticalResultsRequest { PageSize = 100 };
        do
        {
            var page = await reader.CallAsync("ListUnacknowledgedCriticalResults", d => client.ListUnacknowledgedCriticalResultsAsync(request, headers, d), cancellationToken)
                ?? throw new ChaosFailedException("ListUnacknowledgedCriticalResults failed");
            all.AddRange(page.CriticalResults);
            request.PageToken = page.NextPageToken;
        }
        while (request.PageToken.Length > 0);
        return all;
    }

    private static async Task<int> CountAsync<T>(IEnumerable<string> ids, Func<string, Task<T?>> read)
        where T : class
    {
        var found = 0;
        await Parallel.ForEachAsync(ids, new ParallelOptions { MaxDegreeOfParallelism = 8 }, async (id, _) =>
        {
            if (await read(id) is not null)
            {
                Interlocked.Increment(ref found);
            }
        });
        return found;
    }

    private static string Codes(IEnumerable<KeyValuePair<StatusCode, int>> codes) =>
        codes.Any() ? string.Join(", ", codes.OrderByDescending(kv => kv.Value).Select(kv => F($"{kv.Key} {kv.Value}"))) : "none";

    private static string Seconds(double? seconds) => seconds is { } s ? F($"{s:0.00} s") : "-";

    private static string F(FormattableString text) => FormattableString.Invariant(text);
}
