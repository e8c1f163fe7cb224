using LabMesh.Contracts.ServiceRequest.V1;
using LabMesh.Testing;

namespace LabMesh.ServiceRequest.Tests;

/// <summary>REST in the Native AOT executable: <c>rd.xml</c> names the transcoder's generic instantiations (<see cref="AotRestDirectives"/>).</summary>
public sealed class AotRestDirectivesTests
{
    private const string Project = "LabMesh.ServiceRequest";

    [Fact]
    public void RdXml_NamesExactlyTheGenericInstantiationsOfTheRestMessages() =>
        AotRestDirectives.AssertRdXmlMatches(Project, ServiceRequestService.Descriptor);

    [Fact]
    public void ServiceRequestProject_PassesRdXmlToIlc() => AotRestDirectives.AssertProjectPassesRdXml(Project);
}
