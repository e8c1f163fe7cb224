using System.Data.Common;
using Dapper;
using LabMesh.Contracts.Notification.V1;
using LabMesh.Core.Errors;
using LabMesh.Messaging.Storage;
using LabMesh.Core.Validation;

namespace LabMesh.Notification;

/// <summary>
/// The webhook endpoints aggregate: a team's endpoints, created once per request_id, updated by version, deleted
/// (which cancels their pending deliveries in the same transaction).
/// </summary>
public sealed partial class NotificationStore
{
    private const string EndpointColumns =
        "id AS Id, team_id AS TeamId, url AS Url, description AS Description, event_types AS EventTypes, escalation AS Escalation, " +
        "enabled AS Enabled, disabled_reason AS DisabledReason, secret AS Secret, previous_secret AS PreviousSecret, " +
        "previous_secret_expires_at AS PreviousSecretExpiresAt, version AS Version, created_at AS CreatedAt, updated_at AS UpdatedAt";

    /// <summary>
    /// Creates the endpoint, or answers the one an earlier call with the same <paramref name="requestId"/> created
    /// (<c>Created</c> false): NOT_FOUND once that one is deleted, ALREADY_EXISTS when the request differs.
    /// </summary>
    public async Task<(EndpointRecord Endpoint, bool Created)> CreateEndpointAsync(EndpointRecord endpoint, string requestId, string requestHash, CancellationToken cancellationToken)
    {
        return await database.WriteAsync(async (connection, transaction) =>
        {
            var existing = await connection.QuerySingleOrDefaultAsync<EndpointRow>(
                $"SELECT {EndpointColumns}, request_hash AS RequestHash, deleted AS Deleted FROM webhook_endpoints WHERE team_id = @TeamId AND request_id = @requestId",
                new { endpoint.TeamId, requestId, cancellationToken }, transaction);
            if (existing is not null)
            {
                RepeatRequests.EnsureSame(existing.RequestHash, requestHash, "WebhookEndpoint", existing.Id, "webhook endpoint", requestId);
                return existing.Deleted != 0
                    ? throw new NotFoundException("WebhookEndpoint", existing.Id)
                    : (existing.ToRecord(), false);
            }

            await connection.ExecuteAsync(
                """
                INSERT INTO webhook_endpoints (id, team_id, request_id, request_hash, url, description, event_types, escalation, enabled,
                    disabled_reason, secret, previous_secret, previous_secret_expires_at, version, deleted, created_at, updated_at)
                VALUES (@Id, @TeamId, @requestId, @requestHash, @Url, @Description, @types, @escalation, 1, '', @Secret, NULL, NULL, 1, 0, @at, @at)
                """,
                new
                {
                    endpoint.Id, endpoint.TeamId, requestId, requestHash, endpoint.Url, endpoint.Description,
                    types = JoinTypes(endpoint.EventTypes), escalation = endpoint.Escalation ? 1 : 0, endpoint.Secret, at = DbTime.ToDb(endpoint.CreatedAt), cancellationToken,
                },
                transaction);
            return (endpoint with { Enabled = true, Version = 1 }, true);
        }, cancellationToken);
    }

    /// <summary>The team's endpoint, or NOT_FOUND (also for a deleted one).</summary>
    public async Task<EndpointRecord> GetEndpointAsync(string teamId, string id, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        return (await FindEndpointAsync(connection, null, teamId, id, cancellationToken)) ?? throw new NotFoundException("WebhookEndpoint", id);
    }

    public async Task<IReadOnlyList<EndpointRecord>> ListEndpointsAsync(string teamId, string? after, int limit, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        var rows = await connection.QueryAsync<EndpointRow>(
            $"SELECT {EndpointColumns} FROM webhook_endpoints WHERE team_id = @teamId AND deleted = 0 AND (@after IS NULL OR id > @after) ORDER BY id LIMIT @limit",
            new { teamId, after, limit, cancellationToken });
        return [.. rows.Select(r => r.ToRecord())];
    }

    /// <summary>
    /// Applies <paramref name="change"/> to the team's endpoint and stores it with the next version;
    /// ABORTED when <paramref name="expectedEtag"/> is set and not the current one.
    /// </summary>
    public Task<EndpointRecord> UpdateEndpointAsync(
        string teamId, string id, string? expectedEtag, Func<EndpointRecord, EndpointRecord> change, CancellationToken cancellationToken) =>
        database.WriteAsync(async (connection, transaction) =>
        {
            var current = await FindEndpointAsync(connection, transaction, teamId, id, cancellationToken) ?? throw new NotFoundException("WebhookEndpoint", id);
            if (!string.IsNullOrEmpty(expectedEtag) && expectedEtag != current.Etag)
            {
                throw new StaleEtagException("WebhookEndpoint", id);
            }

            var updated = change(current) with { Version = current.Version + 1, UpdatedAt = DbTime.Now(time) };
            await connection.ExecuteAsync(
                """
                UPDATE webhook_endpoints SET url = @Url, description = @Description, event_types = @types, escalation = @escalation,
                    enabled = @enabled, disabled_reason = @DisabledReason, secret = @Secret, previous_secret = @PreviousSecret,
                    previous_secret_expires_at = @previousExpires, version = @Version, updated_at = @at
                WHERE id = @Id
                """,
                new
                {
                    updated.Url, updated.Description, types = JoinTypes(updated.EventTypes), escalation = updated.Escalation ? 1 : 0,
                    enabled = updated.Enabled ? 1 : 0, updated.DisabledReason, updated.Secret, updated.PreviousSecret,
                    previousExpires = updated.PreviousSecretExpiresAt is { } expires ? DbTime.ToDb(expires) : null,
                    updated.Version, at = DbTime.ToDb(updated.UpdatedAt), updated.Id, cancellationToken,
                },
                transaction);
            return updated;
        }, cancellationToken);

    /// <summary>Deletes the team's endpoint and cancels its pending deliveries (their records stay).</summary>
    public Task DeleteEndpointAsync(string teamId, string id, string? expectedEtag, CancellationToken cancellationToken) =>
        database.WriteAsync(async (connection, transaction) =>
        {
            var current = await FindEndpointAsync(connection, transaction, teamId, id, cancellationToken) ?? throw new NotFoundException("WebhookEndpoint", id);
            if (!string.IsNullOrEmpty(expectedEtag) && expectedEtag != current.Etag)
            {
                throw new StaleEtagException("WebhookEndpoint", id);
            }

            var at = DbTime.ToDb(DbTime.Now(time));
            await connection.ExecuteAsync(
                "UPDATE webhook_endpoints SET deleted = 1, version = version + 1, updated_at = @at WHERE id = @id",
                new { id, at, cancellationToken }, transaction);
            await connection.ExecuteAsync(
                "UPDATE deliveries SET state = @cancelled, next_attempt_at = NULL, last_error = 'endpoint deleted' WHERE endpoint_id = @id AND state = @pending",
                new { id, cancelled = (int)DeliveryState.Cancelled, pending = (int)DeliveryState.Pending, cancellationToken }, transaction);
            return 0;
        }, cancellationToken);

    private static async Task<EndpointRecord?> FindEndpointAsync(DbConnection connection, DbTransaction? transaction, string teamId, string id, CancellationToken cancellationToken)
    {
        var row = await connection.QuerySingleOrDefaultAsync<EndpointRow>(
            $"SELECT {EndpointColumns} FROM webhook_endpoints WHERE id = @id AND team_id = @teamId AND deleted = 0",
            new { id, teamId, cancellationToken }, transaction);
        return row?.ToRecord();
    }

    private static string JoinTypes(IReadOnlyList<string> types) => string.Join(' ', types);

    internal sealed class EndpointRow
    {
        public string Id { get; set; } = "";
        public string TeamId { get; set; } = "";
        public string Url { get; set; } = "";
        public string Description { get; set; } = "";
        public string EventTypes { get; set; } = "";
        public int Escalation { get; set; }
        public int Enabled { get; set; }
        public string DisabledReason { get; set; } = "";
        public string Secret { get; set; } = "";
        public string? PreviousSecret { get; set; }
        public string? PreviousSecretExpiresAt { get; set; }
        public long Version { get; set; }
        public string CreatedAt { get; set; } = "";
        public string UpdatedAt { get; set; } = "";
        public string RequestHash { get; set; } = "";

        public int Deleted { get; set; }

        public EndpointRecord ToRecord() => new(
            Id, TeamId, Url, Description, SplitWords(EventTypes), Escalation != 0, Enabled != 0, DisabledReason, Secret, PreviousSecret,
            PreviousSecretExpiresAt is null ? null : DbTime.FromDb(PreviousSecretExpiresAt), Version, DbTime.FromDb(CreatedAt), DbTime.FromDb(UpdatedAt));
    }
}
