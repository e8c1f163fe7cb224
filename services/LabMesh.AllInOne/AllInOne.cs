namespace LabMesh.AllInOne;

/// <summary>Where the all-in-one host listens and what it tells the person who started it.</summary>
internal static class AllInOne
{
    public const string DefaultUrl = "http://127.0.0.1:5000";

    /// <summary>The one h2c URL to listen on: <c>--urls</c> (or ASPNETCORE_URLS) if given, else <see cref="DefaultUrl"/>.</summary>
    public static string ListenUrl(IConfiguration configuration) =>
        configuration["urls"]?.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).FirstOrDefault() ?? DefaultUrl;

    /// <summary>The address this process reaches itself at, for a wildcard listen URL too.</summary>
    public static string LoopbackAddress(string url)
    {
        var uri = new Uri(url.Replace("://*", "://localhost", StringComparison.Ordinal).Replace("://+", "://localhost", StringComparison.Ordinal));
        var host = uri.Host is "0.0.0.0" or "localhost" or "[::]" ? "127.0.0.1" : uri.Host;
        return $"{uri.Scheme}://{host}:{uri.Port}";
    }

    public static void PrintWelcome(string url)
    {
        var address = LoopbackAddress(url);
        var target = address[(address.IndexOf("://", StringComparison.Ordinal) + 3)..];
        Console.WriteLine($"LabMesh all-in-one listening on {address} (h2c: gRPC over HTTP/2 without TLS).");
        Console.WriteLine("Try it:");
        Console.WriteLine($"  grpcurl -plaintext {target} list");
        Console.WriteLine($"  grpcurl -plaintext -H 'x-labmesh-team: demo' -d '{{}}' {target} labmesh.requisition.v1.RequisitionService/ListRequisitions");
        Console.WriteLine($"  grpcurl -plaintext -H 'x-labmesh-team: demo' -d '{{}}' {target} labmesh.notification.v1.NotificationService/Subscribe");
        Console.WriteLine("Or a whole lab order, live:");
        Console.WriteLine($"  dotnet run --project tools/LabMesh.Cli -- demo --target {address}");
    }
}
