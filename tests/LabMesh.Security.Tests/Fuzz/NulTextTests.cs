using Google.Protobuf;
using Google.Rpc;
using Grpc.Core;
using LabMesh.Contracts.Common.V1;
using LabMesh.Contracts.Requisition.V1;
using LabMesh.Testing;

namespace LabMesh.Security.Tests.Fuzz;

/// <summary>
/// A NUL character in any string of a request, on PostgreSQL (whose text cannot hold one; before the check
/// such a request failed in the store as UNKNOWN), and invalid UTF-8 (decoded to U+FFFD, so two different ids
/// were one): INVALID_ARGUMENT naming the field, and nothing stored.
/// </summary>
public sealed class NulTextTests(PostgresAllInOneFixture host) : IClassFixture<PostgresAllInOneFixture>
{
    private const string Team = "team-nul";
    private readonly AllInOne _mesh = host.Mesh;

    public static TheoryData<string> Fields => new() { "request_id", "patient.given_name", "tests[0].code", "tests[1].partner_id" };

    [Theory]
    [MemberData(nameof(Fields))]
    public async Task CreateRequisition_NulInAString_IsInvalidArgumentNamingIt_AndStoresNothing(string field)
    {
        var requisitions = _mesh.For(Team).Requisitions;
        var request = Order();
        switch (field)
        {
            case "request_id": request.RequestId += "\0"; break;
            case "patient.given_name": request.Patient.GivenName = "Ad\0a"; break;
            case "tests[0].code": request.Tests[0].Code = "\0BMP"; break;
            default: request.Tests[1].PartnerId = "lab\0"; break;
        }

        var error = await Assert.ThrowsAsync<RpcException>(() => requisitions.CreateRequisitionAsync(request, deadline: Deadline()).ResponseAsync);

        Assert.Equal(StatusCode.InvalidArgument, error.StatusCode);
        var violation = Assert.Single(error.GetDetail<BadRequest>()!.FieldViolations);
        Assert.Equal(field, violation.Field);
        Assert.DoesNotContain("\0", error.Status.Detail, StringComparison.Ordinal);
        Assert.Empty((await requisitions.ListRequisitionsAsync(new ListRequisitionsRequest(), deadline: Deadline())).Requisitions);
    }

    [Fact]
    public async Task PartnerCall_NulInTheServiceRequestId_IsInvalidArgument_NotAStoreError()
    {
        // For a partner the authorization interceptor looks the service request up before any handler runs.
        var serviceRequests = new LabMesh.Contracts.ServiceRequest.V1.ServiceRequestService.ServiceRequestServiceClient(
            _mesh.Invoker(Team + "-partner", "lab-user", partner: "lab-a"));
        var logged = _mesh.Host.Logs.Records.Count;

        var error = await Assert.ThrowsAsync<RpcException>(() => serviceRequests.GetServiceRequestAsync(
            new LabMesh.Contracts.ServiceRequest.V1.GetServiceRequestRequest { Id = "abc\0def" }, deadline: Deadline()).ResponseAsync);

        Assert.Equal(StatusCode.InvalidArgument, error.StatusCode);
        Assert.Equal("id", Assert.Single(error.GetDetail<BadRequest>()!.FieldViolations).Field);
        Assert.DoesNotContain(_mesh.Host.Logs.Records.Skip(logged), r => r.Level >= Microsoft.Extensions.Logging.LogLevel.Error);
    }

    [Theory]
    [InlineData(0xFF)]
    [InlineData(0xFE)]
    [InlineData(0xC3)]
    public async Task CreateRequisition_InvalidUtf8InRequestId_IsInvalidArgumentNamingIt_AndStoresNothing(byte bad)
    {
        // Google.Protobuf 3.25 decoded invalid UTF-8 to U+FFFD without a word: dup\xff and dup\xfe were the same
        // request_id, and the second "create" answered the first's requisition. 3.36 refuses the message; the
        // error names the field. The bytes go raw, as no stub sends them.
        var team = Team + "-utf8";
        var request = Order();
        request.RequestId = "dup#";
        var bytes = request.ToByteArray();
        bytes[Array.IndexOf(bytes, (byte)'#')] = bad;
        var method = new Method<byte[], byte[]>(MethodType.Unary, RequisitionService.Descriptor.FullName, "CreateRequisition",
            Marshallers.Create(b => b, b => b), Marshallers.Create(b => b, b => b));

        var error = await Assert.ThrowsAsync<RpcException>(() =>
            _mesh.Invoker(team).AsyncUnaryCall(method, null, new CallOptions(deadline: Deadline()), bytes).ResponseAsync);

        Assert.Equal(StatusCode.InvalidArgument, error.StatusCode);
        Assert.Equal("request_id", Assert.Single(error.GetDetail<BadRequest>()!.FieldViolations).Field);
        Assert.Empty((await _mesh.For(team).Requisitions.ListRequisitionsAsync(new ListRequisitionsRequest(), deadline: Deadline())).Requisitions);
    }

    [Fact]
    public async Task CreateRequisition_InvalidUtf8InANestedString_IsInvalidArgumentNamingItsPath()
    {
        var team = Team + "-utf8-nested";
        var request = Order();
        request.Tests[1].PartnerId = "lab#";
        var bytes = request.ToByteArray();
        bytes[Array.IndexOf(bytes, (byte)'#')] = 0xFF;
        var method = new Method<byte[], byte[]>(MethodType.Unary, RequisitionService.Descriptor.FullName, "CreateRequisition",
            Marshallers.Create(b => b, b => b), Marshallers.Create(b => b, b => b));

        var error = await Assert.ThrowsAsync<RpcException>(() =>
            _mesh.Invoker(team).AsyncUnaryCall(method, null, new CallOptions(deadline: Deadline()), bytes).ResponseAsync);

        Assert.Equal(StatusCode.InvalidArgument, error.StatusCode);
        Assert.Equal("tests[1].partner_id", Assert.Single(error.GetDetail<BadRequest>()!.FieldViolations).Field);
    }

    [Fact]
    public async Task CreateRequisition_WithoutNul_IsStoredOnPostgres()
    {
        var requisitions = _mesh.For(Team + "-ok").Requisitions;

        var created = await requisitions.CreateRequisitionAsync(Order(), deadline: Deadline());

        Assert.Equal(2, created.Requisition.ServiceRequests.Count);
        Assert.Single((await requisitions.ListRequisitionsAsync(new ListRequisitionsRequest(), deadline: Deadline())).Requisitions);
    }

    private static CreateRequisitionRequest Order() => new()
    {
        RequestId = Guid.NewGuid().ToString(),
        Patient = new Patient { Id = "p-nul", GivenName = "Ada", FamilyName = "Lovelace", BirthDate = "1815-12-10" },
        Lab = "LabCorp",
        Modality = TestModality.Testkit,
        Place = true,
        Tests = { new OrderedTest { Code = "BMP", PartnerId = "lab-a" }, new OrderedTest { Code = "CBC", PartnerId = "lab-a" } },
    };

    private static DateTime Deadline() => DateTime.UtcNow + AllInOne.Timeout;
}
