using System.Text;
using Google.Protobuf;
using Grpc.Core;
using Grpc.Core.Interceptors;
using LabMesh.Core.Errors;
using LabMesh.Security.Identity;
using LabMesh.Messaging.Storage;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace LabMesh.Security.Audit;

/// <summary>
/// The one place mutations are recorded. For every RPC whose method is marked a mutation
/// (<see cref="ChangesAttribute"/>, <see cref="CreatesAttribute"/>: <see cref="AuditCatalog"/>), it
/// prepares a record (actor, role, team, method, target, the request's field paths) and hands it
/// to the service's store through <see cref="AuditScope"/>: the first write transaction the handler
/// commits on that store inserts it, so the change and its record commit together.
/// <list type="bullet">
/// <item>A handler that succeeds without writing its store (a repeat answered from what is stored,
/// a simulation started) is recorded after it returns, in a transaction of its own.</item>
/// <item>A create's target id comes from the response: it is filled in after the handler returns.</item>
/// <item>A handler that fails before committing anything leaves no record: it changed nothing. One
/// that fails after committing part of its change keeps its record, with the failure's status
/// code as the outcome.</item>
/// </list>
/// Reads are not recorded. A LabMesh method marked neither a read nor a mutation is refused (fail closed).
/// Mutations are unary (a test checks it), so only unary calls are intercepted.
/// </summary>
public sealed partial class AuditInterceptor(IServiceProvider services, ILogger<AuditInterceptor> logger) : Interceptor
{
    // The service's clock when it registers one (tests do), as its stores use.
    private readonly TimeProvider _time = services.GetService<TimeProvider>() ?? TimeProvider.System;

    /// <inheritdoc />
    public override async Task<TResponse> UnaryServerHandler<TRequest, TResponse>(
        TRequest request, ServerCallContext context, UnaryServerMethod<TRequest, TResponse> continuation)
    {
        if (AuditCatalog.MutationOf(context) is not var (target, storeName))
        {
            return await continuation(request, context);
        }

        var caller = context.GetCaller();
        var database = services.GetRequiredKeyedService<Database>(storeName);
        var message = (IMessage)request;
        var row = new AuditRow
        {
            Id = Guid.CreateVersion7().ToString(),
            TeamId = caller.TeamId,
            At = _time.GetUtcNow(),
            Actor = caller.Actor,
            Role = TokenIdentity.RoleName(caller.Role),
            OnBehalfOf = caller.OnBehalfOf ?? "",
            Method = context.Method,
            TargetType = target.Type,
            TargetId = target.InResponse ? "" : AuditFields.Id(message, target.IdPath),
            ChangedFields = AuditFields.Changed(message, target.InResponse ? null : target.IdPath),
        };
        var scope = new AuditScope(database.ServiceName, row, _time);

        // Set inside this async method, the scope flows into the handler and is gone once it returns.
        AuditScope.Current = scope;
        TResponse response;
        try
        {
            response = await continuation(request, context);
        }
        catch (Exception ex)
        {
            if (await scope.CloseAsync())
            {
                await MarkFailedAsync(database, row, ex);
            }

            throw;
        }

        var recorded = await scope.CloseAsync();
        if (target.InResponse)
        {
            row.TargetId = AuditFields.Id((IMessage)response, target.IdPath);
        }

        if (!recorded)
        {
            row.At = _time.GetUtcNow();
            await AuditLog.RecordAsync(database, row);
        }
        else if (target.InResponse && row.TargetId != scope.ClaimedTargetId)
        {
            try
            {
                await AuditLog.SetTargetAsync(database, row.Id, row.TargetId);
            }
            catch (Exception ex)
            {
                // The change and its record are committed; only the new id is missing from the record.
                LogTargetNotSet(logger, row.Id, row.Method, ex);
            }
        }

        return response;
    }

    /// <summary>The status code name (<c>FAILED_PRECONDITION</c>) a failure reaches the caller with.</summary>
    internal static string Outcome(Exception exception)
    {
        var code = exception switch
        {
            RpcException rpc => rpc.StatusCode,
            DomainException domain => DomainExceptionInterceptor.ToRpcException(domain).StatusCode,
            OperationCanceledException => StatusCode.Cancelled,
            _ => DomainExceptionInterceptor.ToUnavailable(exception)?.StatusCode ?? StatusCode.Unknown,
        };
        var name = code.ToString();
        var outcome = new StringBuilder(name.Length + 4);
        for (var i = 0; i < name.Length; i++)
        {
            if (i > 0 && char.IsUpper(name[i]) && char.IsLower(name[i - 1]))
            {
                outcome.Append('_');
            }

            outcome.Append(char.ToUpperInvariant(name[i]));
        }

        return outcome.ToString();
    }

    private async Task MarkFailedAsync(Database database, AuditRow row, Exception failure)
    {
        try
        {
            await AuditLog.SetOutcomeAsync(database, row.Id, Outcome(failure));
        }
        catch (Exception ex)
        {
            LogOutcomeNotSet(logger, row.Id, row.Method, ex);
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Audit record {RecordId} of {Method}: the created target's id could not be filled in")]
    private static partial void LogTargetNotSet(ILogger logger, string recordId, string method, Exception exception);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Audit record {RecordId} of {Method}: the call failed after committing, and its outcome could not be recorded")]
    private static partial void LogOutcomeNotSet(ILogger logger, string recordId, string method, Exception exception);
}
