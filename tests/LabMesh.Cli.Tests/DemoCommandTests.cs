using System.Text.Json;
using LabMesh.Testing;

namespace LabMesh.Cli.Tests;

/// <summary><c>labmesh demo --json</c> end to end against the all-in-one host, Notification service included.</summary>
[Collection(MeshCollection.Name)]
public sealed class DemoCommandTests(MeshHost host) : IDisposable
{
    private readonly OutputMark _logFrom = host.Mark();

    public void Dispose() => host.AssertNoErrors(_logFrom);

    [Fact]
    public async Task Demo_Json_RunsAWholeOrderThroughACriticalResultAndItsAcknowledgement()
    {
        var run = await LabMeshCli.RunAsync(TimeSpan.FromSeconds(120), "demo", "--target", host.Address, "--team", "cli-demo", "--json");

        Assert.True(run.ExitCode == 0, run.ToString());
        Assert.Equal("", run.Stderr);
        var steps = run.JsonLines().ToDictionary(s => s.GetProperty("step").GetString()!);
        Assert.Equal(
        [
            "create_requisition", "subscribe", "place_requisition", "order_event.requisition_created",
            "order_event.appointment_scheduled", "order_event.draw_completed", "submit_partial_results",
            "critical_result_event", "order_event.partial_results", "acknowledge_critical_result",
            "submit_final_results", "order_event.completed", "amend_results", "summary",
        ], steps.Keys);
        Assert.All(steps.Values, s =>
        {
            Assert.True(s.GetProperty("ok").GetBoolean(), s.ToString());
            Assert.True(s.GetProperty("elapsed_ms").GetDouble() >= 0);
            Assert.Equal(JsonValueKind.Null, s.GetProperty("error").ValueKind);
        });

        // Every step shows the order in all three vocabularies; these are the ones the walk must reach.
        AssertStatuses(steps["create_requisition"], null, "not_purchased", null, null);
        AssertStatuses(steps["place_requisition"], "received.at_home_phlebotomy.ordered", "schedule_appointment", null, null);
        AssertStatuses(steps["order_event.requisition_created"], "received.at_home_phlebotomy.requisition_created", "schedule_appointment", "ORDER_CONFIRMED", "ORDER_CONFIRMED");
        AssertStatuses(steps["order_event.appointment_scheduled"], "collecting_sample.at_home_phlebotomy.appointment_scheduled", "upcoming_appointment", "ORDER_CONFIRMED", "ORDER_CONFIRMED");
        AssertStatuses(steps["order_event.draw_completed"], "collecting_sample.at_home_phlebotomy.draw_completed", "processing", "APPOINTMENT_ATTENDED", "APPOINTMENT_ATTENDED");
        AssertStatuses(steps["submit_partial_results"], "collecting_sample.at_home_phlebotomy.draw_completed", "partial_results", "PARTIAL_RESULTS_READY", "APPOINTMENT_ATTENDED");
        AssertStatuses(steps["order_event.partial_results"], "sample_with_lab.at_home_phlebotomy.partial_results", "partial_results", "PARTIAL_RESULTS_READY", "APPOINTMENT_ATTENDED");
        AssertStatuses(steps["submit_final_results"], "sample_with_lab.at_home_phlebotomy.partial_results", "interpretation_ready", "FULL_RESULTS_READY", "FULL_RESULTS_READY");
        AssertStatuses(steps["order_event.completed"], "completed.at_home_phlebotomy.completed", "interpretation_ready", "FULL_RESULTS_READY", "FULL_RESULTS_READY");
        AssertStatuses(steps["amend_results"], "completed.at_home_phlebotomy.completed", "results_amended", "FULL_RESULTS_READY", "FULL_RESULTS_READY");
        Assert.Equal("completed", steps["order_event.completed"].GetProperty("statuses").GetProperty("order_status").GetString());

        var partial = steps["submit_partial_results"].GetProperty("detail");
        Assert.Equal("critical", partial.GetProperty("interpretation").GetString());
        Assert.Equal(["potassium"], partial.GetProperty("critical_analytes").EnumerateArray().Select(a => a.GetString()));

        var critical = steps["critical_result_event"].GetProperty("detail");
        Assert.Equal(partial.GetProperty("report_id").GetString(), critical.GetProperty("report_id").GetString());
        Assert.Equal(["potassium"], critical.GetProperty("critical_analytes").EnumerateArray().Select(a => a.GetString()));
        Assert.Equal("critical", critical.GetProperty("interpretation").GetString());
        Assert.Equal("partial", critical.GetProperty("report_status").GetString());
        Assert.InRange(critical.GetProperty("latency_ms").GetDouble(), -60_000, 10_000);
        Assert.False(string.IsNullOrEmpty(critical.GetProperty("cursor").GetString()));

        var acknowledged = steps["acknowledge_critical_result"].GetProperty("detail");
        Assert.Equal(critical.GetProperty("event_id").GetString(), acknowledged.GetProperty("critical_result_id").GetString());
        Assert.Equal("acknowledged", acknowledged.GetProperty("state").GetString());
        Assert.Equal("dr.demo@clinic.example", acknowledged.GetProperty("acknowledged_by").GetString());

        Assert.Equal("abnormal", steps["submit_final_results"].GetProperty("detail").GetProperty("interpretation").GetString());
        var amended = steps["amend_results"].GetProperty("detail");
        Assert.Equal(2, amended.GetProperty("report_version").GetInt32());
        Assert.Equal("normal", amended.GetProperty("interpretation").GetString());

        var summary = steps["summary"].GetProperty("detail");
        Assert.Equal(2, summary.GetProperty("reports").GetInt32());
        Assert.Equal("results_amended", summary.GetProperty("results_status").GetString());
        Assert.True(summary.GetProperty("all_results_received").GetBoolean());
        Assert.Equal(0, summary.GetProperty("open_critical_results").GetInt32());
        Assert.Equal(1, summary.GetProperty("events_by_type").GetProperty("labtest.result.critical").GetInt32());

        // The demo submits values of its own; its output names analytes and readings, never a value or its unit.
        Assert.DoesNotContain("mmol/L", run.Stdout, StringComparison.Ordinal);
        Assert.DoesNotContain("numeric_value", run.Stdout, StringComparison.Ordinal);
    }

    private static void AssertStatuses(JsonElement step, string? orderSubStatus, string lifecycle, string? panel, string? bloodCount)
    {
        var statuses = step.GetProperty("statuses");
        Assert.Equal(orderSubStatus, statuses.GetProperty("order_sub_status").GetString());
        Assert.Equal(lifecycle, statuses.GetProperty("lifecycle_status").GetString());
        var tests = statuses.GetProperty("service_requests").EnumerateArray().ToDictionary(
            t => t.GetProperty("code").GetString()!, t => t.GetProperty("task_business_status").GetString());
        Assert.Equal(panel, tests["BMP"]);
        Assert.Equal(bloodCount, tests["CBC"]);
    }
}
