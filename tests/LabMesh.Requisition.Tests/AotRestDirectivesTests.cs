using LabMesh.Contracts.Requisition.V1;
using LabMesh.Testing;

namespace LabMesh.Requisition.Tests;

/// <summary>REST in the Native AOT executable: <c>rd.xml</c> names the transcoder's generic instantiations (<see cref="AotRestDirectives"/>).</summary>
public sealed class AotRestDirectivesTests
{
    private const string Project = "LabMesh.Requisition";

    [Fact]
    public void RdXml_NamesExactlyTheGenericInstantiationsOfTheRestMessages() =>
        AotRestDirectives.AssertRdXmlMatches(Project, RequisitionService.Descriptor);

    [Fact]
    public void RequisitionProject_PassesRdXmlToIlc() => AotRestDirectives.AssertProjectPassesRdXml(Project);
}
