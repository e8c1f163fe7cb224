using System.Reflection;
using Google.Protobuf.Reflection;
using LabMesh.ServiceDefaults.Hosting;

namespace LabMesh.ServiceDefaults.Tests.Hosting;

/// <summary>
/// <see cref="GrpcReflectionDescriptors.ContractFiles"/> names the contract files instead of scanning LabMesh.Contracts' types (a
/// Native AOT executable cannot scan them), so a file added under protos/labmesh must be added there: this finds every file
/// the assembly holds, as the scan did, and compares.
/// </summary>
public sealed class GrpcReflectionDescriptorsTests
{
    [Fact]
    public void ContractFiles_AreEveryFileOfTheContractsAssembly_AndApiServicesEveryServiceOfThem()
    {
        var assembly = typeof(LabMesh.Contracts.Requisition.V1.RequisitionService).Assembly;
        var files = assembly.GetTypes()
            .Select(type => type.GetProperty("Descriptor", BindingFlags.Public | BindingFlags.Static)?.GetValue(null))
            .OfType<FileDescriptor>()
            .Select(file => file.Name)
            .Order(StringComparer.Ordinal)
            .ToList();
        Assert.NotEmpty(files);
        Assert.Equal(files, GrpcReflectionDescriptors.ContractFiles.Select(file => file.Name).Order(StringComparer.Ordinal));

        var services = assembly.GetTypes()
            .Select(type => type.GetProperty("Descriptor", BindingFlags.Public | BindingFlags.Static)?.GetValue(null))
            .OfType<ServiceDescriptor>()
            .Select(service => service.FullName)
            .Order(StringComparer.Ordinal)
            .ToList();
        Assert.Contains("labmesh.servicerequest.v1.ServiceRequestService", services);
        Assert.Equal(services, GrpcReflectionDescriptors.ApiServices.Select(d => d.FullName).Where(name => name.StartsWith("labmesh.", StringComparison.Ordinal)));
    }
}
