using LabMesh.Messaging.Storage;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace LabMesh.Messaging.Events;

/// <summary>Registers a service's store, its migrations and its outbox relay.</summary>
public static class StorageServiceCollectionExtensions
{
    /// <summary>The configuration section of <see cref="StorageOptions"/>.</summary>
    public const string StorageSection = "LabMesh:Storage";

    /// <summary>The configuration section of <see cref="OutboxRelayOptions"/>.</summary>
    public const string OutboxSection = "LabMesh:Outbox";

    /// <summary>
    /// Binds <see cref="StorageOptions"/> from <c>LabMesh:Storage</c>, with <c>ConnectionStrings:Postgres</c>
    /// (when set) as the PostgreSQL connection string, and <see cref="OutboxRelayOptions"/> from
    /// <c>LabMesh:Outbox</c>. Calling it again changes nothing.
    /// </summary>
    public static IServiceCollection AddLabMeshStorageOptions(this IServiceCollection services, IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(configuration);
        if (services.Any(d => d.ServiceType == typeof(StorageOptionsBound)))
        {
            return services;
        }

        services.AddSingleton<StorageOptionsBound>();
        services.AddOptions<StorageOptions>()
            .Bind(configuration.GetSection(StorageSection))
            .PostConfigure(options =>
            {
                var postgres = configuration.GetConnectionString("Postgres");
                if (!string.IsNullOrWhiteSpace(postgres))
                {
                    options.PostgresConnectionString = postgres;
                }
            });
        services.AddOptions<OutboxRelayOptions>().Bind(configuration.GetSection(OutboxSection));
        return services;
    }

    /// <summary>
    /// Registers the store of <paramref name="serviceName"/>: a keyed singleton <see cref="Database"/>
    /// (key <paramref name="serviceName"/>) built from <see cref="StorageOptions"/>, a hosted service that
    /// applies <paramref name="migrations"/> at start-up (start-up fails if they fail), and a keyed
    /// singleton <see cref="OutboxRelay"/> (same key) that runs as a hosted service after the
    /// migrations. Needs an <see cref="IEventBus"/>. Several services may share one process, each
    /// with its own store and relay.
    /// </summary>
    public static IServiceCollection AddLabMeshStore(this IServiceCollection services, string serviceName, IReadOnlyList<Migration> migrations)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentException.ThrowIfNullOrEmpty(serviceName);
        ArgumentNullException.ThrowIfNull(migrations);
        if (services.Any(d => d.ServiceType == typeof(Database) && d.IsKeyedService && Equals(d.ServiceKey, serviceName)))
        {
            throw new InvalidOperationException($"The store of '{serviceName}' is registered already.");
        }

        services.AddOptions<StorageOptions>();
        services.AddOptions<OutboxRelayOptions>();
        var steps = migrations.ToArray();

        services.AddKeyedSingleton(serviceName, (sp, _) => Database.Create(
            serviceName,
            sp.GetRequiredService<IOptions<StorageOptions>>().Value,
            sp.GetRequiredService<ILoggerFactory>().CreateLogger<Database>(),
            sp.GetService<IWriteParticipant>()));

        // Hosted services start in registration order, each StartAsync awaited before the next, so the
        // schema exists before the relay (and anything registered later) touches it.
        services.AddSingleton<IHostedService>(sp => new StoreMigrationService(
            sp.GetRequiredKeyedService<Database>(serviceName),
            steps,
            sp.GetRequiredService<ILogger<StoreMigrationService>>()));

        services.AddKeyedSingleton(serviceName, (sp, _) => new OutboxRelay(
            sp.GetRequiredKeyedService<Database>(serviceName),
            sp.GetRequiredService<IEventBus>(),
            sp.GetRequiredService<IOptions<OutboxRelayOptions>>().Value,
            sp.GetRequiredService<ILogger<OutboxRelay>>(),
            sp.GetService<TimeProvider>(),
            sp.GetKeyedService<IOutboxPublishedListener>(serviceName)));
        services.AddSingleton<IHostedService>(sp => sp.GetRequiredKeyedService<OutboxRelay>(serviceName));
        // Readiness: a replica whose store does not answer is taken out of rotation (grpc.health.v1).
        services.AddHealthChecks().Add(new HealthCheckRegistration(
            "store:" + serviceName,
            sp => new StoreHealthCheck(sp.GetRequiredKeyedService<Database>(serviceName), sp.GetRequiredService<ILogger<StoreHealthCheck>>()),
            failureStatus: null,
            tags: null,
            timeout: TimeSpan.FromSeconds(2)));
        return services;
    }

    /// <summary>Marks <see cref="AddLabMeshStorageOptions"/> as done.</summary>
    private sealed class StorageOptionsBound;
}

/// <summary>Healthy while the store answers a trivial query; a failure is logged here as a warning (ASP.NET Core's
/// own per-check error lines are off, see ServiceDefaultsExtensions).</summary>
internal sealed partial class StoreHealthCheck(Database database, ILogger<StoreHealthCheck> logger) : IHealthCheck
{
    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        try
        {
            await using var connection = await database.OpenAsync(cancellationToken);
            await using var command = connection.CreateCommand();
            command.CommandText = "SELECT 1";
            await command.ExecuteScalarAsync(cancellationToken);
            return HealthCheckResult.Healthy();
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            LogUnready(logger, database.ServiceName, database.Provider, ex);
            // The store's own message names hosts; the check's name says which store.
            return HealthCheckResult.Unhealthy($"store {database.ServiceName} ({database.Provider}) does not answer");
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Store {Service} ({Provider}) does not answer: NOT_SERVING until it does")]
    private static partial void LogUnready(ILogger logger, string service, StorageProvider provider, Exception exception);
}

/// <summary>Applies one store's migrations when the host starts; a failure stops the start-up.</summary>
internal sealed partial class StoreMigrationService(Database database, IReadOnlyList<Migration> migrations, ILogger<StoreMigrationService> logger) : IHostedService
{
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        try
        {
            await database.MigrateAsync(migrations, cancellationToken);
            LogMigrated(logger, database.ServiceName, database.Provider, migrations.Count == 0 ? 0 : migrations.Max(m => m.Version));
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            LogMigrationFailed(logger, database.ServiceName, database.Provider, ex);
            throw;
        }
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    [LoggerMessage(Level = LogLevel.Information, Message = "Store {Service} ({Provider}) is at schema version {Version}")]
    private static partial void LogMigrated(ILogger logger, string service, StorageProvider provider, int version);

    [LoggerMessage(Level = LogLevel.Critical, Message = "Store {Service} ({Provider}): migrating failed; the service cannot start")]
    private static partial void LogMigrationFailed(ILogger logger, string service, StorageProvider provider, Exception exception);
}
