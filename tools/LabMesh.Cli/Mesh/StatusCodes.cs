using System.Text;
using Grpc.Core;

namespace LabMesh.Cli.Mesh;

/// <summary>gRPC status codes by their canonical names, as grpcurl and every gRPC document write them.</summary>
internal static class StatusCodes
{
    /// <summary><c>NOT_FOUND</c>, <c>RESOURCE_EXHAUSTED</c>, <c>OK</c>, ...</summary>
    public static string Name(StatusCode code)
    {
        var pascal = code.ToString();
        if (pascal == "OK")
        {
            return pascal;
        }

        var name = new StringBuilder(pascal.Length + 4);
        foreach (var c in pascal)
        {
            if (char.IsUpper(c) && name.Length > 0)
            {
                name.Append('_');
            }

            name.Append(char.ToUpperInvariant(c));
        }

        return name.ToString();
    }
}
