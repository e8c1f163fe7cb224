using LabMesh.Notification.Webhooks;
using LabMesh.Messaging.Events;
using LabMesh.Messaging.Storage;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace LabMesh.Notification;

public static class NotificationServiceExtensions
{
    /// <summary>
    /// The Notification service: its store (migrated at start-up) and outbox relay, settings
    /// (<c>LabMesh:Notification</c>, <c>LabMesh:Notification:Webhooks</c>, checked at start-up), and its
    /// workers: event ingest, webhook delivery, escalation, the stream audit writer.
    /// </summary>
    public static IServiceCollection AddNotificationService(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddLabMeshStore(NotificationStore.ServiceName, NotificationStore.Migrations);
        services.TryAddSingleton(TimeProvider.System);
        services.Configure<NotificationOptions>(configuration.GetSection(NotificationOptions.SectionName));
        services.Configure<WebhookOptions>(configuration.GetSection(WebhookOptions.SectionName));
        services.AddSingleton(sp =>
        {
            var webhooks = sp.GetRequiredService<IOptions<WebhookOptions>>().Value;
            webhooks.Validate();
            return new RetrySchedule(webhooks);
        });
        services.AddSingleton(sp => new WebhookTargetPolicy(sp.GetRequiredService<IOptions<WebhookOptions>>().Value));
        services.AddSingleton(sp => new CriticalTierPolicies(sp.GetRequiredService<IOptions<NotificationOptions>>().Value));
        services.AddSingleton(sp => new NotificationStore(
            sp.GetRequiredKeyedService<Database>(NotificationStore.ServiceName), sp.GetRequiredService<TimeProvider>(),
            sp.GetRequiredService<CriticalTierPolicies>()));
        services.AddSingleton<StreamAudit>();
        services.AddHostedService(sp => sp.GetRequiredService<StreamAudit>());
        services.AddSingleton<WebhookDeliveryWorker>();
        services.AddHostedService(sp => sp.GetRequiredService<WebhookDeliveryWorker>());
        services.AddSingleton<EventIngestor>();
        services.AddHostedService(sp => sp.GetRequiredService<EventIngestor>());
        services.AddSingleton<EscalationWorker>();
        services.AddHostedService(sp => sp.GetRequiredService<EscalationWorker>());
        services.AddSingleton<EventStreams>();
        return services;
    }

    public static IEndpointRouteBuilder MapNotificationService(this IEndpointRouteBuilder endpoints)
    {
        // Resolve the settings now, so a bad configuration stops start-up instead of the first call.
        endpoints.ServiceProvider.GetRequiredService<IOptions<NotificationOptions>>().Value.Validate();
        _ = endpoints.ServiceProvider.GetRequiredService<RetrySchedule>();
        _ = endpoints.ServiceProvider.GetRequiredService<CriticalTierPolicies>();
        endpoints.MapGrpcService<NotificationApi>();
        return endpoints;
    }
}
