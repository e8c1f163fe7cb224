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
using LabMesh.Testing;

namespace LabMesh.ServiceDefaults.Tests.Audit;

/// <summary>
/// The classification of every RPC (the <see cref="AuditedAttribute"/> on its method in the service's class), checked
/// against the generated descriptors so that a new RPC cannot slip by unaudited.
/// </summary>
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

    /// <summary>What the services' classes say of each RPC they implement.</summary>
    private static readonly Dictionary<string, AuditedMethod> Catalog = LabMeshApis.AuditedMethods.DistinctBy(m => m.Method).ToDictionary(m => m.Method, StringComparer.Ordinal);

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
        Assert.True(Catalog.ContainsKey(method), $"{method} is neither a mutation nor a read: put [Reads], [Changes] or [Creates] on its method.");

    [Fact]
    public void TheCatalog_NamesOnlyRpcsThatExist_EachOnce()
    {
        Assert.Empty(Catalog.Keys.Except(ContractMethods.Select(FullName)));
        Assert.Equal(LabMeshApis.AuditedMethods.Count, Catalog.Count);
    }

    [Theory]
    [MemberData(nameof(MethodNames))]
    public void EveryMutation_IsUnary_AndItsTargetIdIsAStringFieldOfItsRequestOrResponse(string name)
    {
        var method = ContractMethods.Single(m => FullName(m) == name);
        if (Catalog[name].Target is not { } target)
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
    public void EveryMutation_IsKeptInItsServicesStore() =>
        Assert.Equal(
            new[] { NotificationStore.ServiceName, RequisitionStore.ServiceName, ResultsStore.ServiceName, ServiceRequestStore.ServiceName }.Order(StringComparer.Ordinal),
            LabMeshApis.AuditedMethods.Where(m => m.Mutates).Select(m => m.Store).Distinct().Order(StringComparer.Ordinal));

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
