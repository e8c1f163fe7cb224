using LabMesh.Security.Identity;
using Microsoft.Extensions.Options;

namespace LabMesh.AllInOne;

/// <summary>Where the all-in-one host listens and what it tells the person who started it.</summary>
internal static class AllInOne
{
    public const string DefaultUrl = "http://127.0.0.1:5000";

    /// <summary>Where REST (HTTP/1.1) is served beside <see cref="DefaultUrl"/>; with --urls, <c>LabMesh:Rest:Url</c> says.</summary>
    public const string DefaultRestUrl = "http://127.0.0.1:5001";

    /// <summary>The one h2c URL to listen on: <c>--urls</c> (or ASPNETCORE_URLS) if given, else <see cref="DefaultUrl"/>.</summary>
    public static string ListenUrl(IConfiguration configuration)
    {
        // Kestrel:Endpoints, when set, replaces --urls: the services reach each other on its first h2c endpoint.
        var endpoints = configuration.GetSection("Kestrel:Endpoints").GetChildren().Select(e => e["Url"]).OfType<string>().ToList();
        if (endpoints.Count > 0)
        {
            return endpoints.FirstOrDefault(u => u.StartsWith("http://", StringComparison.OrdinalIgnoreCase))
                ?? throw new InvalidOperationException(
                    "The all-in-one host's services call each other over h2c on its own port: Kestrel:Endpoints names only "
                    + "https:// endpoints, so give it an http:// endpoint too (e.g. --Kestrel:Endpoints:H2c:Url=http://127.0.0.1:5000).");
        }

        return configuration["urls"]?.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).FirstOrDefault() ?? DefaultUrl;
    }

    /// <summary>Whether Kestrel's endpoints come from configuration (Kestrel:Endpoints), which --urls cannot override.</summary>
    public static bool EndpointsConfigured(IConfiguration configuration) =>
        configuration.GetSection("Kestrel:Endpoints").GetChildren().Any();

    /// <summary>The address this process reaches itself at, for a wildcard listen URL too.</summary>
    public static string LoopbackAddress(string url)
    {
        var uri = new Uri(url.Replace("://*", "://localhost", StringComparison.Ordinal).Replace("://+", "://localhost", StringComparison.Ordinal));
        var host = uri.Host is "0.0.0.0" or "localhost" or "[::]" ? "127.0.0.1" : uri.Host;
        return $"{uri.Scheme}://{host}:{uri.Port}";
    }

    /// <summary>How long the development tokens printed at start stay valid (the key outlives restarts).</summary>
    public static readonly TimeSpan DevelopmentTokenLifetime = TimeSpan.FromDays(7);

    /// <summary>The team the printed development tokens act for (the CLI's default team).</summary>
    public const string DevelopmentTeam = "demo";

    public static void PrintWelcome(string url, string? restUrl, IServiceProvider services)
    {
        var address = LoopbackAddress(url);
        var target = address[(address.IndexOf("://", StringComparison.Ordinal) + 3)..];
        var keys = services.GetRequiredService<SecurityKeys>();
        var reflection = services.GetRequiredService<IOptions<SecurityOptions>>().Value.Reflection;
        Console.WriteLine($"LabMesh all-in-one listening on {address} (h2c: gRPC over HTTP/2 without TLS).");
        var rest = string.IsNullOrWhiteSpace(restUrl) ? null : LoopbackAddress(restUrl);
        Console.WriteLine(rest is null
            ? $"REST (JSON over HTTP/2 only; set LabMesh:Rest:Url for HTTP/1.1): curl --http2-prior-knowledge {address}/v1/requisitions"
            : $"REST (JSON over HTTP/1.1): {rest}/v1/requisitions, /v2/partner/service-request/ID/status, ... (README.md)");
        var token = "<token>";
        if (keys.DevelopmentKeyFile is { } keyFile && keys.Signing is { } key)
        {
            token = key.Mint(new TokenIdentity(DevelopmentTeam, CallerRole.Clinician, "dev-clinician", null), keys.Issuer, keys.Audience, DevelopmentTokenLifetime);
            var admin = key.Mint(new TokenIdentity(DevelopmentTeam, CallerRole.Admin, "dev-admin", null), keys.Issuer, keys.Audience, DevelopmentTokenLifetime);
            Console.WriteLine($"No token keys are configured, so this host signs with a development key ({keyFile}; loopback only).");
            Console.WriteLine($"Development tokens for team {DevelopmentTeam}, valid {DevelopmentTokenLifetime.TotalDays:0} days (SECURITY.md):");
            Console.WriteLine($"  clinician: {token}");
            Console.WriteLine($"  admin:     {admin}");
            Console.WriteLine($"The labmesh command signs its own calls with that key: it looks in data/ of its working directory and the directories above, and in services/LabMesh.AllInOne/data/ of this repository; otherwise set LABMESH_DEV_KEY={keyFile}.");
            Console.WriteLine("A token for any other role (a lab partner, a service), or another team or lifetime:");
            Console.WriteLine("  dotnet run --project tools/LabMesh.Cli -- token --role partner --partner lab-demo");
            Console.WriteLine("  dotnet run --project tools/LabMesh.Cli -- token --role service --team demo --ttl 8h");
        }
        else
        {
            Console.WriteLine("Every call needs a bearer token from your issuer (LabMesh:Security, SECURITY.md): -H 'authorization: Bearer <token>'.");
        }

        Console.WriteLine("Or a whole lab order, live:");
        Console.WriteLine($"  dotnet run --project tools/LabMesh.Cli -- demo --target {address}");
        Console.WriteLine("Try it:");
        if (reflection)
        {
            Console.WriteLine($"  grpcurl -plaintext {target} list");
        }

        Console.WriteLine($"  grpcurl -plaintext -H 'authorization: Bearer {token}' -d '{{}}' {target} labmesh.notification.v1.NotificationService/Subscribe");
        if (rest is not null)
        {
            Console.WriteLine($"  curl -H 'authorization: Bearer {token}' {rest}/v1/requisitions");
        }

        // Last: tests wait for this line to know the welcome is complete.
        Console.WriteLine($"  grpcurl -plaintext -H 'authorization: Bearer {token}' -d '{{}}' {target} labmesh.requisition.v1.RequisitionService/ListRequisitions");
    }
}
