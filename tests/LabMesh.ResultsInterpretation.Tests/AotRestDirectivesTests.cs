using LabMesh.Contracts.Results.V1;
using LabMesh.Testing;

namespace LabMesh.ResultsInterpretation.Tests;

/// <summary>REST in the Native AOT executable: <c>rd.xml</c> names the transcoder's generic instantiations (<see cref="AotRestDirectives"/>).</summary>
public sealed class AotRestDirectivesTests
{
    private const string Project = "LabMesh.ResultsInterpretation";

    [Fact]
    public void RdXml_NamesExactlyTheGenericInstantiationsOfTheRestMessages() =>
        AotRestDirectives.AssertRdXmlMatches(Project, ResultsInterpretationService.Descriptor);

    [Fact]
    public void ResultsInterpretationProject_PassesRdXmlToIlc() => AotRestDirectives.AssertProjectPassesRdXml(Project);
}
