using LabMesh.Testing;

namespace LabMesh.AllInOne.Tests;

/// <summary>The all-in-one host in process (<see cref="AllInOneHost"/>) with <c>LabMesh:Security:Reflection=false</c>, as production runs it.</summary>
public sealed class ReflectionOffHost : AllInOneHost
{
    protected override void Configure(Dictionary<string, string?> settings) => settings["LabMesh:Security:Reflection"] = "false";
}
