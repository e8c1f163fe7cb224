namespace LabMesh.Gateway;

/// <summary>
/// A request no route takes. A gRPC call (content-type application/grpc) is answered as a gRPC server answers a
/// service it does not have: trailers only, <c>UNIMPLEMENTED</c> with the path named; anything else is HTTP 404.
/// </summary>
internal static class NoRoute
{
    public const int Unimplemented = 12;

    public static Task AnswerAsync(HttpContext context)
    {
        var path = context.Request.Path.Value ?? "/";
        if (context.Request.ContentType?.StartsWith("application/grpc", StringComparison.OrdinalIgnoreCase) == true)
        {
            context.Response.StatusCode = StatusCodes.Status200OK;
            context.Response.ContentType = "application/grpc";
            context.Response.Headers["grpc-status"] = Unimplemented.ToString(System.Globalization.CultureInfo.InvariantCulture);
            context.Response.Headers["grpc-message"] = Uri.EscapeDataString($"No LabMesh service at {path} behind this gateway.");
            return Task.CompletedTask;
        }

        context.Response.StatusCode = StatusCodes.Status404NotFound;
        context.Response.ContentType = "text/plain; charset=utf-8";
        return context.Response.WriteAsync($"No LabMesh route for {path} at this gateway.\n");
    }
}
