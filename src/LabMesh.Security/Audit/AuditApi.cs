using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using LabMesh.Contracts.Audit.V1;
using LabMesh.Core.Errors;
using LabMesh.Security.Identity;
using LabMesh.Messaging.Storage;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;

namespace LabMesh.Security.Audit;

/// <summary>
/// <c>labmesh.audit.v1.AuditService</c>: the audit records of the services this process hosts (the
/// stores their classes name, <see cref="AuditStoreAttribute"/>), for the caller's team's admins.
/// Read-only: the contract has no RPC that changes or deletes a record.
/// </summary>
public sealed class AuditApi(IServiceProvider services) : AuditService.AuditServiceBase
{
    private const int MaxFilterLength = 256;

    // 0001-01-01 and 9999-12-31T23:59:59Z, the range of a protobuf Timestamp.
    private const long MinSeconds = -62_135_596_800;
    private const long MaxSeconds = 253_402_300_799;

    // The stores named by the services mapped in this process (their endpoints carry their class's attribute).
    private readonly Lazy<IReadOnlyList<Database>> _stores = new(() =>
        [.. services.GetRequiredService<EndpointDataSource>().Endpoints
            .Select(endpoint => endpoint.Metadata.GetMetadata<AuditStoreAttribute>()?.Store)
            .OfType<string>()
            .Distinct(StringComparer.Ordinal)
            .Order(StringComparer.Ordinal)
            .Select(store => services.GetKeyedService<Database>(store))
            .OfType<Database>()]);

    [Allow(Roles.Admin)]
    [Reads]
    public override async Task<GetAuditLogResponse> GetAuditLog(GetAuditLogRequest request, ServerCallContext context)
    {
        // Admins only: the access matrix (AuthorizationInterceptor) lets no one else in.
        var caller = context.GetCaller();
        var pageSize = PageToken.Size(request.PageSize);
        var query = Validate(request);
        var rows = new List<AuditRow>();
        foreach (var store in _stores.Value)
        {
            rows.AddRange(await AuditLog.QueryAsync(store, caller.TeamId, query, pageSize + 1, context.CancellationToken));
        }

        // Ids are time-ordered and unique across stores, so one order pages through them all.
        var page = rows.OrderByDescending(r => r.Id, StringComparer.Ordinal).Take(pageSize + 1).ToList();
        var response = new GetAuditLogResponse { NextPageToken = PageToken.Next(page, pageSize, r => r.Id) };
        response.Records.AddRange(page.Take(pageSize).Select(Map));
        return response;
    }

    private static AuditRecord Map(AuditRow row)
    {
        var record = new AuditRecord
        {
            Id = row.Id,
            Time = Timestamp.FromDateTimeOffset(row.At),
            TeamId = row.TeamId,
            Actor = row.Actor,
            Role = row.Role,
            Method = row.Method,
            TargetType = row.TargetType,
            TargetId = row.TargetId,
            Outcome = row.Outcome,
            OnBehalfOf = row.OnBehalfOf,
        };
        record.ChangedFields.AddRange(row.ChangedFields.Split(',', StringSplitOptions.RemoveEmptyEntries));
        return record;
    }

    /// <summary>Every bad filter at once; empty filters match anything.</summary>
    private static AuditQuery Validate(GetAuditLogRequest request)
    {
        var violations = new List<FieldViolation>();
        string? Text(string value, string field)
        {
            if (value.Length > MaxFilterLength)
            {
                violations.Add(new FieldViolation(field, $"must be at most {MaxFilterLength} characters."));
            }

            return value.Length == 0 ? null : value;
        }

        DateTimeOffset? Time(Timestamp? value, string field)
        {
            if (value is null)
            {
                return null;
            }

            if (value.Nanos is < 0 or > 999_999_999 || value.Seconds is < MinSeconds or > MaxSeconds)
            {
                violations.Add(new FieldViolation(field, "is not a valid timestamp."));
                return null;
            }

            return value.ToDateTimeOffset();
        }

        var after = PageToken.Decode(request.PageToken);
        var query = new AuditQuery(
            after,
            Text(request.TargetType, "target_type"),
            Text(request.TargetId, "target_id"),
            Text(request.Actor, "actor"),
            Text(request.Method, "method"),
            Time(request.StartTime, "start_time"),
            Time(request.EndTime, "end_time"));
        if (query is { Start: { } start, End: { } end } && end <= start)
        {
            violations.Add(new FieldViolation("end_time", "must be after start_time."));
        }

        return violations.Count > 0 ? throw new InvalidArgumentException(violations) : query;
    }
}
