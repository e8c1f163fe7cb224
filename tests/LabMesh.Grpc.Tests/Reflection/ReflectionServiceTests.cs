using Google.Protobuf.Reflection;
using Grpc.Core;
using Grpc.Reflection;
using Grpc.Reflection.V1;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using CatalogDescriptor = LabMesh.Grpc.Tests.Catalog.Catalog;
using ResponseCase = Grpc.Reflection.V1.ServerReflectionResponse.MessageResponseOneofCase;

namespace LabMesh.Grpc.Tests.Reflection;

/// <summary>Server reflection, v1 and v1alpha, over real sockets: what grpcurl needs for list, describe and calls.</summary>
public sealed class ReflectionServiceTests
{
    private const string CatalogService = "labmesh.test.catalog.v1.Catalog";
    private const string ServiceFile = "catalog_service.proto";
    private const string TypesFile = "catalog_types.proto";

    public static TheoryData<string> Apis => [ReflectionSession.V1, ReflectionSession.V1Alpha];

    [Theory]
    [MemberData(nameof(Apis))]
    public async Task ListServices_NamesEveryMappedServiceIncludingHealthAndReflection(string api)
    {
        await using var server = await StartAsync();
        using var channel = server.CreateChannel();
        await using var session = ReflectionSession.Open(channel, api);

        var response = await session.AskAsync(new ServerReflectionRequest { ListServices = "*" });

        Assert.Equal(ResponseCase.ListServicesResponse, response.MessageResponseCase);
        Assert.Equal(
            new[] { "grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection", CatalogService },
            response.ListServicesResponse.Service.Select(s => s.Name).Order(StringComparer.Ordinal));
        Assert.Empty(server.Logs.Errors);
    }

    [Theory]
    [MemberData(nameof(Apis))]
    public async Task FileContainingSymbol_Service_ReturnsItsFileFirstWithEveryTransitiveDependency(string api)
    {
        await using var server = await StartAsync();
        using var channel = server.CreateChannel();
        await using var session = ReflectionSession.Open(channel, api);

        var response = await session.AskAsync(new ServerReflectionRequest { FileContainingSymbol = CatalogService });

        var names = ReflectionSession.FileNames(response);
        Assert.Equal(ServiceFile, names[0]);
        Assert.Equal(
            new[]
            {
                ServiceFile, TypesFile, "google/protobuf/descriptor.proto", "google/protobuf/duration.proto",
                "google/protobuf/empty.proto", "google/protobuf/timestamp.proto",
            }.Order(StringComparer.Ordinal),
            names.Order(StringComparer.Ordinal));

        // The files alone must be enough to resolve every type the service uses, as a client would.
        var files = ReflectionSession.BuildFiles(response);
        var service = files.Single(f => f.Name == ServiceFile).Services.Single();
        var getItem = service.FindMethodByName("GetItem");
        Assert.Equal("google.protobuf.Timestamp", getItem.InputType.FindFieldByName("if_modified_since").MessageType.FullName);
        Assert.Equal("google.protobuf.Duration", getItem.OutputType.FindFieldByName("item").MessageType.FindFieldByName("shelf_life").MessageType.FullName);
        Assert.Equal("google.protobuf.Empty", service.FindMethodByName("Ping").InputType.FullName);
        Assert.True(service.FindMethodByName("WatchItems").IsServerStreaming);
    }

    [Theory]
    [InlineData(CatalogService, ServiceFile)]
    [InlineData(CatalogService + ".GetItem", ServiceFile)]
    [InlineData("labmesh.test.catalog.v1.GetItemRequest", ServiceFile)]
    [InlineData("labmesh.test.catalog.v1.GetItemRequest.if_modified_since", ServiceFile)]
    [InlineData("labmesh.test.catalog.v1.Item", TypesFile)]
    [InlineData(".labmesh.test.catalog.v1.Item", TypesFile)]
    [InlineData("labmesh.test.catalog.v1.Item.Dimensions", TypesFile)]
    [InlineData("labmesh.test.catalog.v1.Item.Dimensions.width_cm", TypesFile)]
    [InlineData("labmesh.test.catalog.v1.Item.Kind", TypesFile)]
    [InlineData("labmesh.test.catalog.v1.Item.KIND_BOOK", TypesFile)]
    [InlineData("labmesh.test.catalog.v1.Item.price", TypesFile)]
    [InlineData("labmesh.test.catalog.v1.Availability", TypesFile)]
    [InlineData("labmesh.test.catalog.v1.AVAILABILITY_IN_STOCK", TypesFile)]
    [InlineData("labmesh.test.catalog.v1.catalog_owner", TypesFile)]
    [InlineData("google.protobuf.Timestamp", "google/protobuf/timestamp.proto")]
    [InlineData("grpc.health.v1.Health.Watch", "grpc/health/v1/health.proto")]
    [InlineData("grpc.health.v1.HealthCheckResponse.ServingStatus", "grpc/health/v1/health.proto")]
    [InlineData("grpc.reflection.v1.ServerReflection", "grpc/reflection/v1/reflection.proto")]
    [InlineData("grpc.reflection.v1alpha.ServerReflectionResponse", "grpc/reflection/v1alpha/reflection.proto")]
    public async Task FileContainingSymbol_AnyKindOfSymbol_ReturnsTheDeclaringFileFirst(string symbol, string file)
    {
        await using var server = await StartAsync();
        using var channel = server.CreateChannel();
        await using var session = ReflectionSession.Open(channel, ReflectionSession.V1);

        var response = await session.AskAsync(new ServerReflectionRequest { FileContainingSymbol = symbol });

        Assert.Equal(file, ReflectionSession.FileNames(response)[0]);
    }

    [Theory]
    [MemberData(nameof(Apis))]
    public async Task FileByFilename_KnownFile_ReturnsItWithItsDependencies(string api)
    {
        await using var server = await StartAsync();
        using var channel = server.CreateChannel();
        await using var session = ReflectionSession.Open(channel, api);

        var types = await session.AskAsync(new ServerReflectionRequest { FileByFilename = TypesFile });
        var timestamp = await session.AskAsync(new ServerReflectionRequest { FileByFilename = "google/protobuf/timestamp.proto" });

        Assert.Equal(new[] { TypesFile, "google/protobuf/descriptor.proto", "google/protobuf/duration.proto" }, ReflectionSession.FileNames(types));
        Assert.Equal(new[] { "google/protobuf/timestamp.proto" }, ReflectionSession.FileNames(timestamp));
        var item = ReflectionSession.BuildFiles(types).Single(f => f.Name == TypesFile).MessageTypes.Single(m => m.Name == "Item");
        Assert.Equal(new[] { "id", "title", "kind", "dimensions", "shelf_life", "cents", "free" }, item.Fields.InDeclarationOrder().Select(f => f.Name));
    }

    [Theory]
    [MemberData(nameof(Apis))]
    public async Task FileContainingSymbol_UnknownSymbol_IsNotFoundAndTheStreamCarriesOn(string api)
    {
        await using var server = await StartAsync();
        using var channel = server.CreateChannel();
        await using var session = ReflectionSession.Open(channel, api);

        var unknown = await session.AskAsync(new ServerReflectionRequest { Host = "example", FileContainingSymbol = "no.such.Symbol" });
        var next = await session.AskAsync(new ServerReflectionRequest { FileContainingSymbol = CatalogService });

        Assert.Equal(ResponseCase.ErrorResponse, unknown.MessageResponseCase);
        Assert.Equal((int)StatusCode.NotFound, unknown.ErrorResponse.ErrorCode);
        Assert.Contains("no.such.Symbol", unknown.ErrorResponse.ErrorMessage, StringComparison.Ordinal);
        Assert.Equal("example", unknown.ValidHost);
        Assert.Equal("no.such.Symbol", unknown.OriginalRequest.FileContainingSymbol);
        Assert.Equal(ServiceFile, ReflectionSession.FileNames(next)[0]);
        Assert.Equal(CatalogService, next.OriginalRequest.FileContainingSymbol);
    }

    [Fact]
    public async Task FileByFilename_UnknownFile_IsNotFound()
    {
        await using var server = await StartAsync();
        using var channel = server.CreateChannel();
        await using var session = ReflectionSession.Open(channel, ReflectionSession.V1);

        var response = await session.AskAsync(new ServerReflectionRequest { FileByFilename = "nowhere.proto" });

        Assert.Equal(ResponseCase.ErrorResponse, response.MessageResponseCase);
        Assert.Equal((int)StatusCode.NotFound, response.ErrorResponse.ErrorCode);
    }

    [Theory]
    [MemberData(nameof(Apis))]
    public async Task FileContainingExtension_KnownAndUnknownExtension_AnswersFileOrNotFound(string api)
    {
        await using var server = await StartAsync();
        using var channel = server.CreateChannel();
        await using var session = ReflectionSession.Open(channel, api);

        var known = await session.AskAsync(new ServerReflectionRequest
        {
            FileContainingExtension = new ExtensionRequest { ContainingType = "google.protobuf.MessageOptions", ExtensionNumber = 50101 },
        });
        var unknown = await session.AskAsync(new ServerReflectionRequest
        {
            FileContainingExtension = new ExtensionRequest { ContainingType = "google.protobuf.MessageOptions", ExtensionNumber = 50102 },
        });

        Assert.Equal(TypesFile, ReflectionSession.FileNames(known)[0]);
        Assert.Equal(ResponseCase.ErrorResponse, unknown.MessageResponseCase);
        Assert.Equal((int)StatusCode.NotFound, unknown.ErrorResponse.ErrorCode);
    }

    [Theory]
    [MemberData(nameof(Apis))]
    public async Task AllExtensionNumbersOfType_KnownAndUnknownType_AnswersNumbersOrNotFound(string api)
    {
        await using var server = await StartAsync();
        using var channel = server.CreateChannel();
        await using var session = ReflectionSession.Open(channel, api);

        var options = await session.AskAsync(new ServerReflectionRequest { AllExtensionNumbersOfType = "google.protobuf.MessageOptions" });
        var item = await session.AskAsync(new ServerReflectionRequest { AllExtensionNumbersOfType = "labmesh.test.catalog.v1.Item" });
        var unknown = await session.AskAsync(new ServerReflectionRequest { AllExtensionNumbersOfType = "no.such.Type" });

        Assert.Equal(ResponseCase.AllExtensionNumbersResponse, options.MessageResponseCase);
        Assert.Equal("google.protobuf.MessageOptions", options.AllExtensionNumbersResponse.BaseTypeName);
        Assert.Equal(new[] { 50101 }, options.AllExtensionNumbersResponse.ExtensionNumber);
        Assert.Empty(item.AllExtensionNumbersResponse.ExtensionNumber);
        Assert.Equal(ResponseCase.AllExtensionNumbersResponse, item.MessageResponseCase);
        Assert.Equal((int)StatusCode.NotFound, unknown.ErrorResponse.ErrorCode);
    }

    [Fact]
    public async Task EmptyRequest_IsAnsweredUnimplemented()
    {
        await using var server = await StartAsync();
        using var channel = server.CreateChannel();
        await using var session = ReflectionSession.Open(channel, ReflectionSession.V1);

        var response = await session.AskAsync(new ServerReflectionRequest { Host = "h" });

        Assert.Equal(ResponseCase.ErrorResponse, response.MessageResponseCase);
        Assert.Equal((int)StatusCode.Unimplemented, response.ErrorResponse.ErrorCode);
    }

    [Fact]
    public async Task FixedServiceList_ListsAndDescribesOnlyThoseServices()
    {
        await using var server = await TestGrpcServer.StartAsync(
            services => services.AddSingleton(new ReflectionV1ServiceImpl([CatalogDescriptor.Descriptor])),
            endpoints => endpoints.MapGrpcService<ReflectionV1ServiceImpl>());
        using var channel = server.CreateChannel();
        await using var session = ReflectionSession.Open(channel, ReflectionSession.V1);

        var list = await session.AskAsync(new ServerReflectionRequest { ListServices = "" });
        var health = await session.AskAsync(new ServerReflectionRequest { FileContainingSymbol = "grpc.health.v1.Health" });

        Assert.Equal(new[] { CatalogService }, list.ListServicesResponse.Service.Select(s => s.Name));
        Assert.Equal((int)StatusCode.NotFound, health.ErrorResponse.ErrorCode);
    }

    [Fact]
    public void ReflectedFiles_AreTheFilesTheGeneratedCodeEmbeds()
    {
        // What reflection serves is FileDescriptor.SerializedData: a sanity check that it parses back to
        // the same file the generated code was built from.
        FileDescriptor file = CatalogDescriptor.Descriptor.File;

        var proto = FileDescriptorProto.Parser.ParseFrom(file.SerializedData);

        Assert.Equal(ServiceFile, proto.Name);
        Assert.Equal(new[] { TypesFile, "google/protobuf/empty.proto", "google/protobuf/timestamp.proto" }, proto.Dependency);
    }

    internal static Task<TestGrpcServer> StartAsync() =>
        TestGrpcServer.StartAsync(
            services =>
            {
                services.AddGrpcHealthChecks();
                services.AddGrpcReflection();
            },
            endpoints =>
            {
                endpoints.MapGrpcService<CatalogTestService>();
                endpoints.MapGrpcHealthChecksService();
                endpoints.MapGrpcReflectionService();
            });
}
