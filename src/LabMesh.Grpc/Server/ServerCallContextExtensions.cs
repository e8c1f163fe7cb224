using Grpc.AspNetCore.Server.Internal;
using Grpc.Core;
using Microsoft.AspNetCore.Http;

namespace Grpc.AspNetCore.Server;

/// <summary>ASP.NET Core access from a server call.</summary>
public static class ServerCallContextExtensions
{
    /// <summary>The HTTP context of a call hosted on Kestrel (connection, features, user).</summary>
    public static HttpContext GetHttpContext(this ServerCallContext context) =>
        (context as HttpServerCallContext)?.HttpContext
        ?? throw new InvalidOperationException("This ServerCallContext is not hosted on ASP.NET Core.");
}
