using System.Text.Json;
using LabMesh.Contracts.Common.V1;
using LabMesh.Contracts.Requisition.V1;
using LabMesh.Contracts.Results.V1;
using LabMesh.Testing;

namespace LabMesh.Cli.Tests;

/// <summary><c>status</c>, <c>load</c> and <c>watch</c> against the all-in-one host, with <c>--json</c> as a script uses them.</summary>
[Collection(MeshCollection.Name)]
public sealed class MeshCommandTests(MeshHost host) : IDisposable
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);
    private readonly string _team = "cli-" + Guid.NewGuid().ToString("N")[..8];
    private readonly OutputMark _logFrom = host.Mark();

    public void Dispose() => host.AssertNoErrors(_logFrom);

    [Fact]
    public async Task Status_FreshRequisition_ShowsEveryVocabularyItsTestsAndNoResultsYet()
    {
        var requisition = await CreateAsync(place: true);

        var run = await LabMeshCli.RunAsync("status", requisition.Id, "--target", host.Address, "--team", _team, "--json");

        Assert.True(run.ExitCode == 0, run.ToString());
        Assert.Equal("", run.Stderr);
        var status = run.Json();
        Assert.Equal(requisition.Id, status.GetProperty("requisition_id").GetString());
        Assert.Equal(_team, status.GetProperty("team_id").GetString());
        Assert.Equal("walk_in_test", status.GetProperty("modality").GetString());
        var statuses = status.GetProperty("statuses");
        Assert.Equal("received", statuses.GetProperty("order_status").GetString());
        Assert.Equal("received.walk_in_test.ordered", statuses.GetProperty("order_sub_status").GetString());
        Assert.Equal("purchased", statuses.GetProperty("lifecycle_status").GetString());
        var tests = statuses.GetProperty("service_requests").EnumerateArray().ToList();
        Assert.Equal(["BMP", "CBC"], tests.Select(t => t.GetProperty("code").GetString()));
        Assert.All(tests, t => Assert.Equal("active", t.GetProperty("status").GetString()));
        Assert.All(tests, t => Assert.Equal(JsonValueKind.Null, t.GetProperty("task_business_status").ValueKind));
        Assert.Equal(["received.walk_in_test.ordered"],
            status.GetProperty("order_events").EnumerateArray().Select(e => e.GetProperty("status").GetString()));
        Assert.Empty(status.GetProperty("results").GetProperty("reports").EnumerateArray());
        Assert.Empty(status.GetProperty("open_critical_results").EnumerateArray());
        Assert.Empty(status.GetProperty("unavailable").EnumerateArray());
    }

    [Fact]
    public async Task DevelopmentKey_RunInsideTheRepository_IsFoundWhereDotnetRunKeepsIt_AndNowhereElse()
    {
        var requisition = await CreateAsync(place: true);
        // A clone's layout: `dotnet run --project services/LabMesh.AllInOne` keeps the key in the project's data/,
        // and `dotnet run --project tools/LabMesh.Cli` runs labmesh in tools/LabMesh.Cli.
        var clone = Directory.CreateTempSubdirectory("labmesh-clone-").FullName;
        try
        {
            await File.WriteAllTextAsync(Path.Combine(clone, "LabMesh.sln"), "");
            var hostData = Directory.CreateDirectory(Path.Combine(clone, "services", "LabMesh.AllInOne", "data")).FullName;
            var cli = Directory.CreateDirectory(Path.Combine(clone, "tools", "LabMesh.Cli")).FullName;
            var elsewhere = Directory.CreateTempSubdirectory("labmesh-elsewhere-").FullName;

            var withoutKey = await LabMeshCli.RunInAsync(cli, "status", requisition.Id, "--target", host.Address, "--team", _team, "--json");
            File.Copy(TestKeyFile.Path, Path.Combine(hostData, "dev-signing-key.json"));
            var found = await LabMeshCli.RunInAsync(cli, "status", requisition.Id, "--target", host.Address, "--team", _team, "--json");
            var outside = await LabMeshCli.RunInAsync(elsewhere, "status", requisition.Id, "--target", host.Address, "--team", _team, "--json");
            Directory.Delete(elsewhere, recursive: true);

            Assert.NotEqual(0, withoutKey.ExitCode);
            Assert.Contains("UNAUTHENTICATED", withoutKey.Stderr, StringComparison.Ordinal);
            Assert.True(found.ExitCode == 0, found.ToString());
            Assert.Equal(requisition.Id, found.Json().GetProperty("requisition_id").GetString());
            Assert.NotEqual(0, outside.ExitCode);
        }
        finally
        {
            Directory.Delete(clone, recursive: true);
        }
    }

    [Fact]
    public async Task Status_WithAServiceToken_ActsForTeamOnlyWhenTheTokenNamesNone()
    {
        var requisition = await CreateAsync(place: true);
        var meshToken = TestCaller.Token(null, Security.Identity.CallerRole.Service, "service:ops");
        var integrationToken = TestCaller.Token(_team, Security.Identity.CallerRole.Service, "service:lab-gateway");

        // The mesh's kind of service token acts for --team; a team-bound one calls as itself, whatever --team says.
        var asMesh = await LabMeshCli.RunAsync("status", requisition.Id, "--target", host.Address, "--team", _team, "--token", meshToken, "--json");
        var asIntegration = await LabMeshCli.RunAsync("status", requisition.Id, "--target", host.Address, "--team", "another-team", "--token", integrationToken, "--json");

        Assert.True(asMesh.ExitCode == 0, asMesh.ToString());
        Assert.True(asIntegration.ExitCode == 0, asIntegration.ToString());
        Assert.Equal(_team, asMesh.Json().GetProperty("team_id").GetString());
        Assert.Equal(_team, asIntegration.Json().GetProperty("team_id").GetString());
    }

    [Fact]
    public async Task Status_UnacknowledgedCriticalResult_ListsItWithTheReportsCriticalAnalyte()
    {
        var requisition = await CreateAsync(place: true);
        using var channel = host.CreateChannel();
        var results = new ResultsInterpretationService.ResultsInterpretationServiceClient(TestCaller.Invoker(channel, _team));
        await results.SubmitResultsAsync(new SubmitResultsRequest
        {
            RequestId = Guid.NewGuid().ToString("N"),
            RequisitionId = requisition.Id,
            ServiceRequestIds = { requisition.ServiceRequests[0].Id },
            Metadata = new ReportMetadata { Status = ReportStatus.Partial, SpecimenNumber = "S-1" },
            Results = { new Marker { Name = "Potassium", Slug = "potassium", Unit = "mmol/L", NumericValue = 6.9, MinRangeValue = 3.5, MaxRangeValue = 5.1 } },
        }, deadline: DateTime.UtcNow.Add(Timeout));

        // The Notification service opens the critical result from the event bus, a moment after SubmitResults.
        JsonElement status = default;
        var until = DateTime.UtcNow.Add(Timeout);
        do
        {
            var run = await LabMeshCli.RunAsync("status", requisition.Id, "--target", host.Address, "--team", _team, "--json");
            Assert.True(run.ExitCode == 0, run.ToString());
            status = run.Json();
        }
        while (status.GetProperty("open_critical_results").GetArrayLength() == 0 && DateTime.UtcNow < until);

        var open = Assert.Single(status.GetProperty("open_critical_results").EnumerateArray());
        Assert.Equal(["potassium"], open.GetProperty("critical_analytes").EnumerateArray().Select(a => a.GetString()));
        Assert.Equal("open", open.GetProperty("state").GetString());
        var report = Assert.Single(status.GetProperty("results").GetProperty("reports").EnumerateArray());
        Assert.Equal(open.GetProperty("report_id").GetString(), report.GetProperty("id").GetString());
        Assert.Equal("critical", report.GetProperty("interpretation").GetString());
        Assert.Equal(["potassium"], report.GetProperty("critical_analytes").EnumerateArray().Select(a => a.GetString()));
        Assert.Equal("partial_results", status.GetProperty("statuses").GetProperty("lifecycle_status").GetString());
        // The value itself, as a number or a string (not a substring: a timestamp's seconds can read "56.9...").
        Assert.DoesNotContain(Values(status.GetProperty("results")), v => v is "6.9" or "6.90");
        Assert.Equal("critical_risk", open.GetProperty("tier").GetString());
        Assert.Equal("critical_risk", report.GetProperty("critical_tier").GetString());
        Assert.False(report.GetProperty("unsolicited").GetBoolean());
    }

    [Fact]
    public async Task Status_UnsolicitedReport_ShowsItsResultsThatAnswerNoOrderedTest()
    {
        var requisition = await CreateAsync(place: true);
        using var channel = host.CreateChannel();
        var results = new ResultsInterpretationService.ResultsInterpretationServiceClient(TestCaller.Invoker(channel, _team));
        await results.SubmitResultsAsync(new SubmitResultsRequest
        {
            RequestId = Guid.NewGuid().ToString("N"),
            RequisitionId = requisition.Id,
            Metadata = new ReportMetadata { Status = ReportStatus.Final, SpecimenNumber = "S-2" },
            Results = { new Marker { Name = "Vitamin D", Slug = "vitamin_d", Unit = "ng/mL", NumericValue = 18, MinRangeValue = 30, MaxRangeValue = 100 } },
        }, deadline: DateTime.UtcNow.Add(Timeout));

        var run = await LabMeshCli.RunAsync("status", requisition.Id, "--target", host.Address, "--team", _team, "--json");

        Assert.True(run.ExitCode == 0, run.ToString());
        var view = run.Json().GetProperty("results");
        Assert.Equal(1, view.GetProperty("unsolicited_reports").GetInt32());
        var report = Assert.Single(view.GetProperty("reports").EnumerateArray());
        Assert.True(report.GetProperty("unsolicited").GetBoolean());
        Assert.Equal(["vitamin_d"], report.GetProperty("unsolicited_analytes").EnumerateArray().Select(a => a.GetString()));
        Assert.Equal(JsonValueKind.Null, report.GetProperty("critical_tier").ValueKind);

        var text = await LabMeshCli.RunAsync("status", requisition.Id, "--target", host.Address, "--team", _team);
        Assert.True(text.ExitCode == 0, text.ToString());
        Assert.Contains("unsolicited", text.Stdout, StringComparison.Ordinal);
        Assert.Contains("vitamin_d", text.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Status_AnotherTeamsRequisition_ExitsOneNamingNotFoundAndTheAddress()
    {
        var requisition = await CreateAsync(place: true);

        var run = await LabMeshCli.RunAsync("status", requisition.Id, "--target", host.Address, "--team", _team + "-other", "--json");

        Assert.True(run.ExitCode == 1, run.ToString());
        Assert.Contains("RequisitionService/GetRequisition failed with NOT_FOUND", run.Stderr, StringComparison.Ordinal);
        Assert.Contains(host.Address, run.Stderr, StringComparison.Ordinal);
        Assert.Equal("", run.Stdout);
    }

    [Fact]
    public async Task Load_FiftyCalls_ReportsExactlyFiftyCallsAndNoErrors()
    {
        var run = await LabMeshCli.RunAsync("load", "--calls", "50", "--target", host.Address, "--team", _team, "--json");

        Assert.True(run.ExitCode == 0, run.ToString());
        var report = run.Json();
        Assert.Equal("calls", report.GetProperty("bound").GetString());
        Assert.Equal(50, report.GetProperty("calls").GetInt64());
        Assert.Equal(0, report.GetProperty("errors").GetInt64());
        Assert.Empty(report.GetProperty("errors_by_status").EnumerateObject());
        var rpcs = report.GetProperty("rpcs").EnumerateArray().ToList();
        Assert.Equal(50, rpcs.Sum(r => r.GetProperty("calls").GetInt64()));
        Assert.Equal(["GetRequisitionStatus", "GetRequisition", "CreateRequisition", "SubmitResults"],
            rpcs.Select(r => r.GetProperty("rpc").GetString()));
        Assert.All(rpcs, r =>
        {
            Assert.True(r.GetProperty("p50_ms").GetDouble() > 0);
            Assert.True(r.GetProperty("p99_ms").GetDouble() >= r.GetProperty("p50_ms").GetDouble());
            Assert.True(r.GetProperty("p999_ms").GetDouble() >= r.GetProperty("p99_ms").GetDouble());
        });
        Assert.True(report.GetProperty("calls_per_second").GetDouble() > 0);
    }

    [Fact]
    public async Task Load_Duration_StopsAtItsBound()
    {
        var run = await LabMeshCli.RunAsync("load", "--rpc", "GetRequisitionStatus", "--duration", "1s", "--concurrency", "2",
            "--target", host.Address, "--team", _team, "--json");

        Assert.True(run.ExitCode == 0, run.ToString());
        var report = run.Json();
        Assert.Equal("duration", report.GetProperty("bound").GetString());
        Assert.InRange(report.GetProperty("duration_ms").GetDouble(), 1000, 1000 + Timeout.TotalMilliseconds);
        Assert.True(report.GetProperty("calls").GetInt64() > 0);
        Assert.Equal(["GetRequisitionStatus"], report.GetProperty("rpcs").EnumerateArray().Select(r => r.GetProperty("rpc").GetString()));
    }

    [Fact]
    public async Task Watch_PlacedRequisition_PrintsItsEventsWithCursorsThatResumeAfterThem()
    {
        var draft = await CreateAsync(place: false);
        using var watch = LabMeshCli.Start("watch", "--requisition", draft.Id, "--max-events", "2", "--verbose", "--heartbeat", "1s",
            "--target", host.Address, "--team", _team, "--json");
        var lines = new List<JsonElement>();
        try
        {
            // Live once the first heartbeat arrives: from then on nothing published is missed.
            lines.Add(await ReadLineAsync(watch));
            Assert.Equal("heartbeat", lines[0].GetProperty("kind").GetString());
            await PlaceAsync(draft);
            while (await watch.StandardOutput.ReadLineAsync().WaitAsync(Timeout) is { } line)
            {
                lines.Add(JsonDocument.Parse(line).RootElement);
            }

            await watch.WaitForExitAsync().WaitAsync(Timeout);
        }
        finally
        {
            if (!watch.HasExited)
            {
                watch.Kill(entireProcessTree: true);
            }
        }

        Assert.True(watch.ExitCode == 0, await watch.StandardError.ReadToEndAsync().WaitAsync(Timeout));
        var events = lines.Where(l => l.GetProperty("kind").GetString() == "event").ToList();
        Assert.Equal(2, events.Count);
        Assert.Equal(["order.placed", "order.status_changed"], events.Select(e => e.GetProperty("event").GetProperty("type").GetString()).Order());
        Assert.All(events, e => Assert.Equal(draft.Id, e.GetProperty("event").GetProperty("requisition_id").GetString()));
        Assert.All(events, e => Assert.False(string.IsNullOrEmpty(e.GetProperty("cursor").GetString())));

        var resumed = await LabMeshCli.RunAsync("watch", "--requisition", draft.Id, "--resume-after", events[0].GetProperty("cursor").GetString()!,
            "--max-events", "1", "--target", host.Address, "--team", _team, "--json");

        Assert.True(resumed.ExitCode == 0, resumed.ToString());
        var replayed = Assert.Single(resumed.JsonLines());
        Assert.Equal(events[1].GetProperty("event").GetProperty("id").GetString(), replayed.GetProperty("event").GetProperty("id").GetString());
    }

    /// <summary>Every number and string in a JSON document, as its text.</summary>
    private static IEnumerable<string> Values(JsonElement element) => element.ValueKind switch
    {
        JsonValueKind.Object => element.EnumerateObject().SelectMany(p => Values(p.Value)),
        JsonValueKind.Array => element.EnumerateArray().SelectMany(Values),
        JsonValueKind.Number => [element.GetRawText()],
        JsonValueKind.String => [element.GetString()!],
        _ => [],
    };

    private static async Task<JsonElement> ReadLineAsync(System.Diagnostics.Process process)
    {
        string? line;
        try
        {
            line = await process.StandardOutput.ReadLineAsync().WaitAsync(Timeout);
        }
        catch (TimeoutException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException("labmesh watch printed nothing: " + await process.StandardError.ReadToEndAsync().WaitAsync(Timeout));
        }

        if (line is null)
        {
            Assert.Fail("labmesh watch ended: " + await process.StandardError.ReadToEndAsync().WaitAsync(Timeout));
        }

        return JsonDocument.Parse(line).RootElement;
    }

    [Fact]
    public async Task Status_ReplacementOrder_ShowsItsChainWithEachMembersStatusAndResults()
    {
        var failed = await CreateAsync(place: true);
        using var channel = host.CreateChannel();
        var client = new RequisitionService.RequisitionServiceClient(TestCaller.Invoker(channel, _team));
        foreach (var status in new[] { "received.walk_in_test.requisition_created", "failed.walk_in_test.sample_error" })
        {
            await client.RecordOrderEventAsync(new RecordOrderEventRequest { Id = failed.Id, Status = status }, deadline: DateTime.UtcNow.Add(Timeout));
        }

        var redraw = (await client.CreateRequisitionAsync(new CreateRequisitionRequest
        {
            RequestId = Guid.NewGuid().ToString("N"),
            Patient = new Patient { Id = "cli-test-patient" },
            Modality = TestModality.WalkInTest,
            Tests = { new OrderedTest { Code = "CBC", PartnerId = "lab-a" } },
            Place = true,
            ReplacesRequisitionId = failed.Id,
        }, deadline: DateTime.UtcNow.Add(Timeout))).Requisition;

        var run = await LabMeshCli.RunAsync("status", redraw.Id, "--target", host.Address, "--team", _team, "--json");

        Assert.True(run.ExitCode == 0, run.ToString());
        var replacement = run.Json().GetProperty("replacement");
        Assert.Equal(failed.Id, replacement.GetProperty("replaces").GetString());
        Assert.Empty(replacement.GetProperty("replaced_by").EnumerateArray());
        var chain = replacement.GetProperty("chain").EnumerateArray().ToList();
        Assert.Equal([failed.Id, redraw.Id], chain.Select(c => c.GetProperty("requisition_id").GetString()));
        Assert.Equal(["failed.walk_in_test.sample_error", "received.walk_in_test.ordered"],
            chain.Select(c => c.GetProperty("order_sub_status").GetString()));
        Assert.Equal(["CBC"], chain[1].GetProperty("tests").EnumerateArray().Select(t => t.GetString()));
        Assert.All(chain, c => Assert.Empty(c.GetProperty("results").GetProperty("reports").EnumerateArray()));

        var old = await LabMeshCli.RunAsync("status", failed.Id, "--target", host.Address, "--team", _team);
        Assert.True(old.ExitCode == 0, old.ToString());
        Assert.Contains("replacement chain", old.Stdout, StringComparison.Ordinal);
    }

    private async Task<LabMesh.Contracts.Requisition.V1.Requisition> CreateAsync(bool place)
    {
        using var channel = host.CreateChannel();
        var client = new RequisitionService.RequisitionServiceClient(TestCaller.Invoker(channel, _team));
        var response = await client.CreateRequisitionAsync(new CreateRequisitionRequest
        {
            RequestId = Guid.NewGuid().ToString("N"),
            Patient = new Patient { Id = "cli-test-patient" },
            Modality = TestModality.WalkInTest,
            Tests =
            {
                new OrderedTest { Code = "BMP", PartnerId = "lab-a" },
                new OrderedTest { Code = "CBC", PartnerId = "lab-a" },
            },
            Place = place,
        }, deadline: DateTime.UtcNow.Add(Timeout));
        return response.Requisition;
    }

    private async Task PlaceAsync(LabMesh.Contracts.Requisition.V1.Requisition draft)
    {
        using var channel = host.CreateChannel();
        var client = new RequisitionService.RequisitionServiceClient(TestCaller.Invoker(channel, _team));
        await client.PlaceRequisitionAsync(new PlaceRequisitionRequest { Id = draft.Id, Etag = draft.Etag }, deadline: DateTime.UtcNow.Add(Timeout));
    }
}
