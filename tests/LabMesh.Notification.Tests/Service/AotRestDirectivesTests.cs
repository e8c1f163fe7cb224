using LabMesh.Contracts.Notification.V1;
using LabMesh.Testing;

namespace LabMesh.Notification.Tests.Service;

/// <summary>REST in the Native AOT executable: <c>rd.xml</c> names the transcoder's generic instantiations (<see cref="AotRestDirectives"/>).</summary>
public sealed class AotRestDirectivesTests
{
    private const string Project = "LabMesh.Notification";

    [Fact]
    public void RdXml_NamesExactlyTheGenericInstantiationsOfTheRestMessages() =>
        AotRestDirectives.AssertRdXmlMatches(Project, NotificationService.Descriptor);

    [Fact]
    public void NotificationProject_PassesRdXmlToIlc() => AotRestDirectives.AssertProjectPassesRdXml(Project);
}
