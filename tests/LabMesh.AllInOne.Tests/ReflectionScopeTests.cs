using Grpc.Core;
using LabMesh.Testing;
using V1 = Grpc.Reflection.V1;
using V1Alpha = Grpc.Reflection.V1Alpha;

namespace LabMesh.AllInOne.Tests;

/// <summary>
/// One service's process, as a gateway reaches it: its reflection lists its own services, and with
/// <c>x-labmesh-reflection: api</c> (what the gateway sets when no process is named) every LabMesh contract, so that
/// grpcurl pointed at the gateway sees the whole API (issue 23 item 7; GrpcReflectionDescriptors).
/// </summary>
public sealed class ReflectionScopeTests(ServiceRequestHost service) : IClassFixture<ServiceRequestHost>
{
    private static readonly string[] Api =
    [
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
        "grpc.reflection.v1alpha.ServerReflection",
        "labmesh.audit.v1.AuditService",
        "labmesh.notification.v1.NotificationService",
        "labmesh.requisition.v1.RequisitionService",
        "labmesh.results.v1.ResultsInterpretationService",
        "labmesh.servicerequest.v1.ServiceRequestService",
    ];

    [Fact]
    public async Task WithoutTheHeader_ListsThisProcessesOwnServices()
    {
        var listed = await ListV1Async(new Metadata());

        Assert.Contains("labmesh.servicerequest.v1.ServiceRequestService", listed);
        Assert.DoesNotContain("labmesh.requisition.v1.RequisitionService", listed);
        Assert.DoesNotContain("labmesh.notification.v1.NotificationService", listed);
    }

    [Fact]
    public async Task WithTheApiHeader_ListsEveryContract_OnV1AndV1Alpha()
    {
        var headers = new Metadata { { "x-labmesh-reflection", "api" } };

        Assert.Equal(Api, (await ListV1Async(headers)).Order(StringComparer.Ordinal));
        Assert.Equal(Api, (await ListV1AlphaAsync(headers)).Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task WithTheApiHeader_DescribesAServiceThisProcessDoesNotHost()
    {
        using var channel = service.Host.CreateChannel();
        using var call = new V1.ServerReflection.ServerReflectionClient(channel)
            .ServerReflectionInfo(new Metadata { { "x-labmesh-reflection", "api" } }, DateTime.UtcNow.AddSeconds(30));
        await call.RequestStream.WriteAsync(new V1.ServerReflectionRequest { FileContainingSymbol = "labmesh.notification.v1.NotificationService" });
        await call.RequestStream.CompleteAsync();
        Assert.True(await call.ResponseStream.MoveNext());

        Assert.Null(call.ResponseStream.Current.ErrorResponse);
        Assert.NotEmpty(call.ResponseStream.Current.FileDescriptorResponse.FileDescriptorProto);
        await DrainAsync(call.ResponseStream);
    }

    [Theory]
    [InlineData("API")]
    [InlineData("process")]
    public async Task AnotherValueOfTheHeader_IsThisProcessesOwnView(string value)
    {
        var listed = await ListV1Async(new Metadata { { "x-labmesh-reflection", value } });

        Assert.DoesNotContain("labmesh.requisition.v1.RequisitionService", listed);
    }

    private async Task<List<string>> ListV1Async(Metadata headers)
    {
        using var channel = service.Host.CreateChannel();
        using var call = new V1.ServerReflection.ServerReflectionClient(channel).ServerReflectionInfo(headers, DateTime.UtcNow.AddSeconds(30));
        await call.RequestStream.WriteAsync(new V1.ServerReflectionRequest { ListServices = "" });
        await call.RequestStream.CompleteAsync();
        Assert.True(await call.ResponseStream.MoveNext());
        List<string> listed = [.. call.ResponseStream.Current.ListServicesResponse.Service.Select(s => s.Name)];
        await DrainAsync(call.ResponseStream);
        return listed;
    }

    private async Task<List<string>> ListV1AlphaAsync(Metadata headers)
    {
        using var channel = service.Host.CreateChannel();
        using var call = new V1Alpha.ServerReflection.ServerReflectionClient(channel).ServerReflectionInfo(headers, DateTime.UtcNow.AddSeconds(30));
        await call.RequestStream.WriteAsync(new V1Alpha.ServerReflectionRequest { ListServices = "" });
        await call.RequestStream.CompleteAsync();
        Assert.True(await call.ResponseStream.MoveNext());
        List<string> listed = [.. call.ResponseStream.Current.ListServicesResponse.Service.Select(s => s.Name)];
        await DrainAsync(call.ResponseStream);
        return listed;
    }

    /// <summary>
    /// Reads the stream to its end (the server's OK) before the channel is disposed: disposing it with the server's
    /// side still open aborts the connection under the server's read, which it logs as an error.
    /// </summary>
    private static async Task DrainAsync<T>(IAsyncStreamReader<T> responses)
    {
        while (await responses.MoveNext(CancellationToken.None))
        {
        }
    }
}
