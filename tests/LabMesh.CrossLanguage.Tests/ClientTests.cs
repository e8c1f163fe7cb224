using System.Text.Json;

namespace LabMesh.CrossLanguage.Tests;

/// <summary>
/// What every client, in its own language and with stubs from its own toolchain, must be able to do
/// with the real services: each test runs one case of the client script against the class's host,
/// asserts on what the script printed, and fails if the host logged an error meanwhile.
/// </summary>
public abstract class ClientTests(AllInOneHostFixture host, ClientScript client, ITestOutputHelper output)
{
    protected AllInOneHostFixture Host { get; } = host;

    protected ClientScript Client { get; } = client;

    protected ITestOutputHelper Output { get; } = output;

    [Fact]
    public async Task CreateRequisition_Placed_IsReadBackWithAllItsServiceRequests()
    {
        var run = await RunAsync("create_and_read");

        run.AssertCompleted();
        var created = run.Step("create_and_read", "created");
        Assert.True(created.GetProperty("created").GetBoolean());
        var placed = created.GetProperty("requisition");
        var id = Text(placed, "id");
        Assert.False(string.IsNullOrEmpty(id));
        Assert.Equal("demo", Text(placed, "team_id"));
        Assert.Equal("ORDER_STATUS_RECEIVED", Text(placed, "status"));
        Assert.Equal("received.testkit.ordered", Text(placed, "sub_status"));
        var read = run.Step("create_and_read", "read").GetProperty("requisition");
        Assert.Equal(id, Text(read, "id"));
        Assert.Equal("ORDER_STATUS_RECEIVED", Text(read, "status"));
        Assert.Equal("LIFECYCLE_STATUS_PURCHASED", Text(read, "lifecycle_status"));
        var serviceRequests = read.GetProperty("service_requests").EnumerateArray().ToList();
        Assert.Equal(["LIPID_PANEL", "CBC"], serviceRequests.Select(s => Text(s, "code")));
        Assert.All(serviceRequests, s =>
        {
            Assert.Equal(id, Text(s, "requisition_id"));
            Assert.Equal("lab-a", Text(s, "partner_id"));
        });
        // The very service requests the create made, each read back.
        Assert.Equal(Ids(placed.GetProperty("service_requests")), Ids(read.GetProperty("service_requests")));
        AssertHostLoggedNoError();
    }

    [Fact]
    public async Task Subscribe_ThenPlace_StreamsOrderPlacedOfThatRequisition()
    {
        var run = await RunAsync("subscribe_live");

        run.AssertCompleted();
        // The order was placed after the stream's first heartbeat: it was live, not replaying.
        run.Step("subscribe_live", "live");
        var seen = run.Step("subscribe_live", "event");
        var @event = seen.GetProperty("event");
        Assert.Equal("order.placed", Text(@event, "type"));
        Assert.Equal(Text(seen, "requisition_id"), Text(@event, "requisition_id"));
        Assert.Equal("demo", Text(@event, "team_id"));
        Assert.Equal("order_placed", Text(@event, "payload"));
        Assert.Equal("testkit", Text(@event, "modality"));
        var lineItems = @event.GetProperty("line_items").EnumerateArray().ToList();
        Assert.Equal(["LIPID_PANEL", "CBC"], lineItems.Select(i => Text(i, "code")));
        Assert.Equal(
            seen.GetProperty("service_request_ids").EnumerateArray().Select(i => i.GetString()).Order(),
            lineItems.Select(i => Text(i, "service_request_id")).Order());
        Assert.False(string.IsNullOrEmpty(Text(@event, "id")));
        Assert.False(string.IsNullOrEmpty(Text(seen, "cursor")));
        AssertHostLoggedNoError();
    }

    [Fact]
    public async Task Subscribe_ResumeAfterEventId_ReplaysWhatCameAfterItAndNothingBefore()
    {
        var run = await RunAsync("subscribe_resume");

        run.AssertCompleted();
        var resumed = run.Step("subscribe_resume", "resumed");
        var resumeAfter = Text(resumed, "resume_after");
        var first = Text(resumed, "first_requisition_id");
        var second = Text(resumed, "second_requisition_id");
        Assert.NotEqual(first, second);
        var replayed = resumed.GetProperty("replayed").EnumerateArray().ToList();
        // The second order was placed while no stream was open: only the replay can have shown it.
        Assert.Contains(replayed, e => Text(e, "type") == "order.placed" && Text(e, "requisition_id") == second);
        Assert.DoesNotContain(replayed, e => Text(e, "id") == resumeAfter);
        Assert.DoesNotContain(replayed, e => Text(e, "requisition_id") == first);
        Assert.All(replayed, e => Assert.Equal("order.placed", Text(e, "type")));
        AssertHostLoggedNoError();
    }

    [Fact]
    public async Task CreateRequisition_BadInput_IsInvalidArgumentWithDecodedBadRequest()
    {
        var run = await RunAsync("bad_request");

        run.AssertCompleted();
        var error = run.Step("bad_request", "error");
        Assert.Equal("INVALID_ARGUMENT", Text(error, "code"));
        Assert.True(error.GetProperty("status_details_trailer").GetBoolean(), "no grpc-status-details-bin trailer");
        Assert.Equal(3, error.GetProperty("status_code").GetInt32());
        var detail = Assert.Single(error.GetProperty("details").EnumerateArray());
        Assert.Equal("type.googleapis.com/google.rpc.BadRequest", Text(detail, "type_url"));
        var violations = detail.GetProperty("field_violations").EnumerateArray().ToList();
        Assert.Equal(["patient.id", "tests[0].partner_id"], violations.Select(v => Text(v, "field")));
        Assert.All(violations, v => Assert.False(string.IsNullOrEmpty(Text(v, "description"))));
        AssertHostLoggedNoError();
    }

    protected async Task<ClientRun> RunAsync(string clientCase, string? caFile = null)
    {
        var run = await Client.RunAsync(Host.Target, Host.ClinicianToken, clientCase, caFile ?? Host.CaCertificate, Output);
        var start = run.Lines.FirstOrDefault(l => Text(l, "step") == "start");
        Assert.True(start.ValueKind == JsonValueKind.Object && Text(start, "language") == Client.Language, $"The {Client} client did not start.\n{run.Description}");
        Assert.Equal(Host.CaCertificate is not null, start.GetProperty("tls").GetBoolean());
        return run;
    }

    protected void AssertHostLoggedNoError() => Host.AssertNoErrors();

    protected static string? Text(JsonElement element, string name) =>
        element.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String ? value.GetString() : null;

    private static List<string?> Ids(JsonElement serviceRequests) => [.. serviceRequests.EnumerateArray().Select(s => Text(s, "id"))];
}

/// <summary>Python grpcio over h2c.</summary>
public sealed class PythonClientTests(AllInOneHostFixture host, ITestOutputHelper output)
    : ClientTests(host, PythonClient.Instance, output), IClassFixture<AllInOneHostFixture>;

/// <summary>Node @grpc/grpc-js over h2c.</summary>
public sealed class NodeClientTests(AllInOneHostFixture host, ITestOutputHelper output)
    : ClientTests(host, NodeClient.Instance, output), IClassFixture<AllInOneHostFixture>;

/// <summary>Python grpcio over TLS, verifying the host's certificate with the test CA that signed it.</summary>
public sealed class PythonTlsClientTests(TlsAllInOneHostFixture host, ITestOutputHelper output)
    : ClientTests(host, PythonClient.Instance, output), IClassFixture<TlsAllInOneHostFixture>
{
    [Fact]
    public async Task Tls_ServerCertificateOfAnotherCa_IsRefusedByTheClient()
    {
        var stranger = TestCertificates.WriteServerCertificate(Host.WorkingDirectory, "stranger");

        var run = await RunAsync("create_and_read", stranger.CaCertificate);

        Assert.True(run.ExitCode == 1, $"Expected the client to fail.\n{run.Description}");
        var failed = Assert.Single(run.Lines, l => Text(l, "step") == "failed");
        Assert.Equal("UNAVAILABLE", Text(failed, "code"));
        Assert.Contains("certificate verify failed", Text(failed, "message"), StringComparison.Ordinal);
        Assert.DoesNotContain(run.Lines, l => Text(l, "case") == "create_and_read");
        AssertHostLoggedNoError();
    }
}
