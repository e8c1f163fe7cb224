using System.Reflection;
using Google.Protobuf.Reflection;
using Grpc.Core;
using LabMesh.Contracts.Common.V1;
using LabMesh.Contracts.Notification.V1;
using LabMesh.Contracts.Requisition.V1;
using LabMesh.Notification;
using LabMesh.Requisition;
using LabMesh.ResultsInterpretation;
using LabMesh.Security.Audit;
using LabMesh.Core.Errors;
using LabMesh.ServiceRequest;

namespace LabMesh.ServiceDefaults.Tests.Audit;

/// <summary>The classification of every RPC, checked against the generated descriptors so that a new RPC cannot slip by unaudited.</summary>
public sealed class AuditCatalogTests
{
    /// <summary>Every method of every LabMesh service the contracts assembly compiled, from its file descriptors.</summary>
    public static IReadOnlyList<MethodDescriptor> ContractMethods { get; } =
        [.. typeof(Patient).Assembly.GetTypes()
            .Select(type => type.GetProperty("Descriptor", BindingFlags.Public | BindingFlags.Static))
            .Where(property => property?.PropertyType == typeof(FileDescriptor))
            .Select(property => (FileDescriptor)property!.GetValue(null)!)
            .Where(file => file.Package.StartsWith("labmesh.", StringComparison.Ordinal))
            .SelectMany(file => file.Services)
            .SelectMany(service => service.Methods)];

    public static TheoryData<string> MethodNames => new(ContractMethods.Select(FullName));

    [Fact]
    public void TheContracts_DefineTheFourServicesAndTheAuditLog()
    {
        var services = ContractMethods.Select(m => m.Service.FullName).Distinct().Order(StringComparer.Ordinal);

        Assert.Equal(
            ["labmesh.audit.v1.AuditService", "labmesh.notification.v1.NotificationService", "labmesh.requisition.v1.RequisitionService",
             "labmesh.results.v1.ResultsInterpretationService", "labmesh.servicerequest.v1.ServiceRequestService"],
            services);
    }

    [Theory]
    [MemberData(nameof(MethodNames))]
    public void EveryRpc_IsClassified(string method) =>
        Assert.True(AuditCatalog.Methods.ContainsKey(method), $"{method} is neither a mutation nor a read in AuditCatalog: classify it.");

    [Fact]
    public void TheCatalog_NamesOnlyRpcsThatExist() =>
        Assert.Empty(AuditCatalog.Methods.Keys.Except(ContractMethods.Select(FullName)));

    [Theory]
    [MemberData(nameof(MethodNames))]
    public void EveryMutation_IsUnary_AndItsTargetIdIsAStringFieldOfItsRequestOrResponse(string name)
    {
        var method = ContractMethods.Single(m => FullName(m) == name);
        if (AuditCatalog.Methods[name].Target is not { } target)
        {
            return;
        }

        Assert.False(method.IsClientStreaming || method.IsServerStreaming, $"{name}: the interceptor records unary calls only.");
        var message = target.InResponse ? method.OutputType : method.InputType;
        FieldDescriptor? field = null;
        foreach (var part in target.IdPath.Split('.'))
        {
            field = message?.FindFieldByName(part);
            Assert.False(field is null || field.IsRepeated, $"{name}: {target.IdPath} is not a singular field path of {message?.FullName}.");
            message = field.FieldType == FieldType.Message ? field.MessageType : null;
        }

        Assert.Equal(FieldType.String, field!.FieldType);
    }

    [Fact]
    public void TheStores_AreTheServicesStores() =>
        Assert.Equal(
            new[] { NotificationStore.ServiceName, RequisitionStore.ServiceName, ResultsStore.ServiceName, ServiceRequestStore.ServiceName }.Order(StringComparer.Ordinal),
            AuditCatalog.Stores);

    [Fact]
    public void Classify_RefusesAnUnknownLabMeshMethod_AndLeavesHealthAndReflectionAlone()
    {
        var error = Assert.Throws<RpcException>(() => AuditCatalog.Classify("/labmesh.requisition.v1.RequisitionService/DropEverything"));

        Assert.Equal(StatusCode.Unimplemented, error.StatusCode);
        Assert.Null(AuditCatalog.Classify("/grpc.health.v1.Health/Check"));
        Assert.Null(AuditCatalog.Classify("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"));
    }

    [Fact]
    public void ChangedFields_AreThePathsSet_WithoutValuesIdsOrControlFields()
    {
        var request = new CreateRequisitionRequest
        {
            RequestId = "k1",
            Patient = new Patient { Id = "p1", GivenName = "Zebulon", BirthDate = "1931-07-04" },
            Modality = TestModality.Testkit,
            Tests = { new OrderedTest { Code = "BMP" } },
        };

        Assert.Equal("patient.id,patient.given_name,patient.birth_date,modality,tests", AuditFields.Changed(request, null));
        Assert.Equal("r-9", AuditFields.Id(new CreateRequisitionResponse { Requisition = new() { Id = "r-9" } }, "requisition.id"));
        Assert.Equal("", AuditFields.Id(new CreateRequisitionResponse(), "requisition.id"));
    }

    [Fact]
    public void ChangedFields_FollowUpdateFlags_AndSkipTheTargetAndEtag()
    {
        var request = new UpdateWebhookEndpointRequest
        {
            Id = "e1",
            Etag = "v1",
            UpdateEnabled = true,
            Enabled = false,
            Url = "https://ignored.example",
        };

        Assert.Equal("enabled", AuditFields.Changed(request, "id"));
    }

    [Fact]
    public void Outcome_IsTheStatusCodeName() =>
        Assert.Equal(
            ["FAILED_PRECONDITION", "NOT_FOUND", "DEADLINE_EXCEEDED", "UNKNOWN"],
            [
                AuditInterceptor.Outcome(new IllegalTransitionException("x", "a", "b", [])),
                AuditInterceptor.Outcome(new NotFoundException("x", "y")),
                AuditInterceptor.Outcome(new RpcException(new Status(StatusCode.DeadlineExceeded, ""))),
                AuditInterceptor.Outcome(new InvalidOperationException()),
            ]);

    private static string FullName(MethodDescriptor method) => $"/{method.Service.FullName}/{method.Name}";
}
