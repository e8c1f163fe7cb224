using Grpc.Core;
using Grpc.Core.Interceptors;
using Grpc.Net.Client;
using LabMesh.Contracts.Common.V1;
using LabMesh.Contracts.Requisition.V1;
using LabMesh.Contracts.Results.V1;
using LabMesh.Contracts.ServiceRequest.V1;
using LabMesh.Security.Identity;
using LabMesh.Testing;

namespace LabMesh.AllInOne.Tests;

/// <summary>
/// The README's run command: the all-in-one host as its own process, with nothing but its embedded
/// defaults (SQLite under the working directory, in-process cache and bus), on a chosen port.
/// </summary>
public sealed class AllInOneHostTests(AllInOneProcess host) : IClassFixture<AllInOneProcess>
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task RunCommand_ServesAnOrderEndToEndAndSaysHowToTryIt()
    {
        var output = host.Output;
        var port = host.Port;
        Assert.Contains(output, line => line.Contains($"grpcurl -plaintext 127.0.0.1:{port} list", StringComparison.Ordinal));
        Assert.Contains(output, line => line.Contains($"127.0.0.1:{port} labmesh.notification.v1.NotificationService/Subscribe", StringComparison.Ordinal));
        Assert.Contains(output, line => line.Contains($"demo --target http://127.0.0.1:{port}", StringComparison.Ordinal));
        using var channel = GrpcChannel.ForAddress(host.Address);
        // No key configured, on loopback: the host made a development key under its data directory and
        // printed tokens signed with it. The test signs a service token with that key (as the CLI does).
        var keyFile = Path.Combine(host.WorkingDirectory, "data", SecurityKeys.DevelopmentKeyFileName);
        Assert.Contains(output, line => line.Contains(keyFile, StringComparison.Ordinal));
        if (!OperatingSystem.IsWindows())
        {
            // The stores and the key hold patient names, webhook secrets and a private key: owner-only.
            var data = Path.GetDirectoryName(keyFile)!;
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(data));
            Assert.NotEmpty(Directory.GetFiles(data, "*.db"));
            foreach (var file in Directory.GetFiles(data))
            {
                Assert.True(File.GetUnixFileMode(file) == (UnixFileMode.UserRead | UnixFileMode.UserWrite), $"{file} is {File.GetUnixFileMode(file)}");
            }
        }

        var stored = DevelopmentKey.Read(keyFile);
        using var key = SigningKey.FromPem(stored.KeyId, stored.PrivateKeyPem, keyFile);
        var serviceToken = key.Mint(new TokenIdentity("demo", CallerRole.Service, "aio-test", null), stored.Issuer, stored.Audience, TimeSpan.FromMinutes(10));
        var invoker = Bearer(channel, serviceToken);
        var requisitions = new RequisitionService.RequisitionServiceClient(invoker);
        var request = new CreateRequisitionRequest
        {
            RequestId = "first-order",
            Patient = new Patient { Id = "p-1" },
            Modality = TestModality.WalkInTest,
            Place = true,
            Tests = { new OrderedTest { Code = "CBC", PartnerId = "lab-a" }, new OrderedTest { Code = "LIPID_PANEL", PartnerId = "lab-a" } },
        };

        var created = await requisitions.CreateRequisitionAsync(request, deadline: DateTime.UtcNow.Add(Timeout));

        Assert.Equal(2, created.Requisition.ServiceRequests.Count);
        var statuses = await new ServiceRequestService.ServiceRequestServiceClient(invoker).BatchGetStatusAsync(
            new BatchGetStatusRequest { Ids = { created.Requisition.ServiceRequests.Select(s => s.Id) } }, deadline: DateTime.UtcNow.Add(Timeout));
        Assert.Equal(2, statuses.Statuses.Count);
        Assert.True(File.Exists(Path.Combine(host.WorkingDirectory, "data", "requisition.db")));

        var results = new ResultsInterpretationService.ResultsInterpretationServiceClient(invoker);
        var report = new SubmitResultsRequest
        {
            RequestId = "aio-report-1",
            RequisitionId = created.Requisition.Id,
            ServiceRequestIds = { created.Requisition.ServiceRequests[0].Id },
            Metadata = new ReportMetadata { Status = ReportStatus.Partial, SpecimenNumber = "S-1" },
            Results = { new Marker { Name = "Potassium", Slug = "potassium", Unit = "mmol/L", NumericValue = 6.6, MinRangeValue = 3.5, MaxRangeValue = 5.1 } },
        };
        var submitted = await results.SubmitResultsAsync(report, deadline: DateTime.UtcNow.Add(Timeout));
        Assert.Equal(Interpretation.Critical, submitted.Report.Metadata.Interpretation);
        var requisition = await requisitions.GetRequisitionAsync(new GetRequisitionRequest { Id = created.Requisition.Id }, deadline: DateTime.UtcNow.Add(Timeout));
        Assert.Equal(LifecycleStatus.PartialResults, requisition.Requisition.LifecycleStatus);
        Assert.True(File.Exists(Path.Combine(host.WorkingDirectory, "data", "results.db")));
        // The clinician token of the welcome works as printed, for the team demo.
        var printed = host.Welcome("clinician: ");
        var listed = await new RequisitionService.RequisitionServiceClient(Bearer(channel, printed))
            .ListRequisitionsAsync(new ListRequisitionsRequest(), deadline: DateTime.UtcNow.Add(Timeout));
        Assert.Contains(listed.Requisitions, r => r.Id == created.Requisition.Id);
        Assert.Contains(output, line => line.Contains($"grpcurl -plaintext -H 'authorization: Bearer {printed}'", StringComparison.Ordinal));
        // It names the command that makes tokens for the roles it does not print.
        Assert.Contains(output, line => line.Contains("-- token --role partner", StringComparison.Ordinal));
        Assert.Contains(output, line => line.Contains("-- token --role service", StringComparison.Ordinal));
        var anonymous = await Assert.ThrowsAsync<RpcException>(() => new RequisitionService.RequisitionServiceClient(channel)
            .ListRequisitionsAsync(new ListRequisitionsRequest(), deadline: DateTime.UtcNow.Add(Timeout)).ResponseAsync);
        Assert.Equal(StatusCode.Unauthenticated, anonymous.StatusCode);
    }

    private static CallInvoker Bearer(GrpcChannel channel, string token) => channel.CreateCallInvoker().Intercept(m =>
    {
        m.Add("authorization", "Bearer " + token);
        return m;
    });
}
