using Grpc.Core;
using Grpc.Core.Interceptors;
using LabMesh.Contracts.ServiceRequest.V1;
using LabMesh.Core.Errors;
using LabMesh.Core.Validation;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace LabMesh.Security.Identity;

/// <summary>
/// The one place that decides who calls and what they may do, for every LabMesh RPC (SECURITY.md):
/// <list type="number">
/// <item>the methods of <see cref="AccessMatrix.OpenServices"/> (health, reflection) pass untouched;</item>
/// <item>the <c>authorization: Bearer</c> token is checked by <see cref="TokenValidator"/>: missing or
///   bad is UNAUTHENTICATED with one terse message, whatever was wrong;</item>
/// <item>a service token may name the team and actor it calls for (<see cref="Caller.ForTeamHeader"/>,
///   <see cref="Caller.ForActorHeader"/>); from any other role that is PERMISSION_DENIED;</item>
/// <item>the method's <see cref="AllowAttribute"/> (<see cref="AccessMatrix"/>) must allow the role (PERMISSION_DENIED
///   otherwise; a method without one is refused too), and a partner is held to its own service requests by
///   the attribute's <see cref="PartnerRule"/>, decided here, and only here, for every method that names one
///   (another's is NOT_FOUND, as if it did not exist); the handlers of <see cref="PartnerRule.AssignedServiceRequest"/>
///   read with the partner scope decided here (<see cref="CallerExtensions.GetPartnerScope"/>);</item>
/// <item>the <see cref="Caller"/> is left for the handler (<see cref="CallerExtensions.GetCaller"/>),
///   which scopes every read and write to the caller's team.</item>
/// </list>
/// Registered first, so interceptors after it (and handlers) see only authenticated, authorized calls.
/// </summary>
public sealed partial class AuthorizationInterceptor(SecurityKeys keys, ILogger<AuthorizationInterceptor> logger) : Interceptor
{
    /// <summary>The one message of every UNAUTHENTICATED answer: it tells nothing about what was wrong.</summary>
    public const string UnauthenticatedMessage = "Missing or invalid bearer token.";

    /// <summary>The metadata key of the token.</summary>
    public const string AuthorizationHeader = "authorization";

    /// <inheritdoc />
    public override async Task<TResponse> UnaryServerHandler<TRequest, TResponse>(
        TRequest request, ServerCallContext context, UnaryServerMethod<TRequest, TResponse> continuation)
    {
        if (AccessMatrix.IsOpen(context.Method))
        {
            return await continuation(request, context);
        }

        var (caller, rule) = await AuthorizeAsync(context);
        if (caller.Role == CallerRole.Partner)
        {
            await HoldPartnerAsync(rule, caller, request, context);
        }

        var response = await continuation(request, context);
        if (caller.Role == CallerRole.Partner && rule.Partner == PartnerRule.OwnServiceRequestBatch
            && request is BatchGetStatusRequest batch && response is BatchGetStatusResponse statuses)
        {
            KeepOwnStatuses(caller, batch, statuses);
        }

        return response;
    }

    /// <inheritdoc />
    public override async Task ServerStreamingServerHandler<TRequest, TResponse>(
        TRequest request, IServerStreamWriter<TResponse> responseStream, ServerCallContext context, ServerStreamingServerMethod<TRequest, TResponse> continuation)
    {
        if (!AccessMatrix.IsOpen(context.Method))
        {
            var (caller, rule) = await AuthorizeAsync(context);
            if (caller.Role == CallerRole.Partner)
            {
                await HoldPartnerAsync(rule, caller, request, context);
            }
        }

        await continuation(request, responseStream, context);
    }

    /// <inheritdoc />
    public override async Task<TResponse> ClientStreamingServerHandler<TRequest, TResponse>(
        IAsyncStreamReader<TRequest> requestStream, ServerCallContext context, ClientStreamingServerMethod<TRequest, TResponse> continuation)
    {
        if (!AccessMatrix.IsOpen(context.Method))
        {
            var (caller, rule) = await AuthorizeAsync(context);
            RefuseStreamedPartnerRule(caller, rule, context);
        }

        return await continuation(requestStream, context);
    }

    /// <inheritdoc />
    public override async Task DuplexStreamingServerHandler<TRequest, TResponse>(
        IAsyncStreamReader<TRequest> requestStream, IServerStreamWriter<TResponse> responseStream, ServerCallContext context, DuplexStreamingServerMethod<TRequest, TResponse> continuation)
    {
        if (!AccessMatrix.IsOpen(context.Method))
        {
            var (caller, rule) = await AuthorizeAsync(context);
            RefuseStreamedPartnerRule(caller, rule, context);
        }

        await continuation(requestStream, responseStream, context);
    }

    private async Task<(Caller Caller, AllowAttribute Rule)> AuthorizeAsync(ServerCallContext context)
    {
        var identity = await AuthenticateAsync(context);
        var forTeam = context.RequestHeaders.GetValue(Caller.ForTeamHeader);
        var forActor = context.RequestHeaders.GetValue(Caller.ForActorHeader);
        if ((forTeam is not null || forActor is not null) && identity.Role != CallerRole.Service)
        {
            LogRefused(logger, context.Method, "names a team or actor without the service role");
            throw new RpcException(new Status(StatusCode.PermissionDenied, "Only a service may act for a team or an actor."));
        }

        if (forTeam is not null && !IsName(forTeam, 128))
        {
            throw new RpcException(new Status(StatusCode.InvalidArgument, $"{Caller.ForTeamHeader} must be 1 to 128 printable characters."));
        }

        if (forActor is not null && !IsName(forActor, 256))
        {
            throw new RpcException(new Status(StatusCode.InvalidArgument, $"{Caller.ForActorHeader} must be 1 to 256 printable characters."));
        }

        // A service token with a team claim (an integration's) stays in that team; only the mesh's own
        // service tokens, which name no team, act for any team.
        if (forTeam is not null && identity.Team is not null && !string.Equals(forTeam, identity.Team, StringComparison.Ordinal))
        {
            LogRefused(logger, context.Method, "a team-bound service token names another team");
            throw new RpcException(new Status(StatusCode.PermissionDenied, "A service token bound to a team may act only for that team."));
        }

        var team = forTeam ?? identity.Team
            ?? throw new RpcException(new Status(StatusCode.InvalidArgument, $"A service token names no team: send {Caller.ForTeamHeader}."));
        var caller = new Caller(team, identity.Subject, identity.Role, identity.PartnerId)
        {
            OnBehalfOf = forActor,
            // Only the mesh's own services relay: a team-bound token naming an actor is still a caller of its own.
            Relayed = identity.Team is null && (forTeam is not null || forActor is not null),
        };

        var rule = AccessMatrix.Of(context);
        if (rule is null || !rule.Allows(caller.Role))
        {
            var role = TokenIdentity.RoleName(caller.Role);
            LogRefused(logger, context.Method, "role " + role);
            throw new RpcException(new Status(StatusCode.PermissionDenied, $"The {role} role may not call {context.Method}."));
        }

        context.SetCaller(caller);
        return (caller, rule);
    }

    private async Task<TokenIdentity> AuthenticateAsync(ServerCallContext context)
    {
        var header = context.RequestHeaders.GetValue(AuthorizationHeader);
        const string scheme = "Bearer ";
        TokenIdentity? identity = null;
        var failure = header is null ? "no token" : keys.Validator is null ? "no keys yet" : "not a bearer token";
        if (keys.Validator is { } validator && header is not null && header.Length > scheme.Length
            && header.StartsWith(scheme, StringComparison.OrdinalIgnoreCase))
        {
            (identity, failure) = await validator.CheckAsync(header[scheme.Length..].Trim());
        }

        if (identity is null)
        {
            LogRefused(logger, context.Method, failure ?? "invalid");
            throw new RpcException(new Status(StatusCode.Unauthenticated, UnauthenticatedMessage));
        }

        return identity;
    }

    private static async Task HoldPartnerAsync(AllowAttribute rule, Caller caller, object request, ServerCallContext context)
    {
        switch (rule.Partner)
        {
            case PartnerRule.AssignedServiceRequest:
                // The one decision: this call reads and changes only the caller's service requests. The handler reads with it.
                context.SetPartnerScope(caller.PartnerId
                    ?? throw new RpcException(new Status(StatusCode.PermissionDenied, $"The partner role may not call {context.Method}.")));
                var id = request switch
                {
                    GetServiceRequestRequest r => r.Id,
                    UpdateTaskStatusRequest r => r.Id,
                    GetServiceRequestHistoryRequest r => r.Id,
                    _ => throw new RpcException(new Status(StatusCode.PermissionDenied, $"The partner role may not call {context.Method}.")),
                };
                if (string.IsNullOrWhiteSpace(id) || id.Length > Ids.MaxLength || id.Contains('\0'))
                {
                    // Not looked up (PostgreSQL's text cannot hold a NUL): RequestTextInterceptor or the handler
                    // answers INVALID_ARGUMENT.
                    return;
                }

                var assignments = context.GetHttpContext().RequestServices.GetService<IServiceRequestAssignments>()
                    ?? throw new RpcException(new Status(StatusCode.PermissionDenied, $"The partner role may not call {context.Method} here."));
                // Pending ones included, and a service request never changes partner: another's is refused here, before
                // the handler validates anything. One the team does not have yet passes (the handler answers INVALID_ARGUMENT
                // or NOT_FOUND), held by the partner scope set above should it be created for another partner meanwhile.
                var partner = await assignments.PartnerOfAsync(caller.TeamId, id, context.CancellationToken);
                if (partner is not null && partner != caller.PartnerId)
                {
                    // Exactly what the handler answers for an id that does not exist.
                    throw DomainExceptionInterceptor.ToRpcException(new NotFoundException("service request", id));
                }

                return;
            case PartnerRule.OwnServiceRequestList when request is ListServiceRequestsRequest list:
                if (list.PartnerId.Length == 0)
                {
                    list.PartnerId = caller.PartnerId;
                }
                else if (list.PartnerId != caller.PartnerId)
                {
                    throw new RpcException(new Status(StatusCode.PermissionDenied, "A partner lists only its own service requests (partner_id)."));
                }

                return;
            case PartnerRule.OwnServiceRequestBatch when request is BatchGetStatusRequest:
                return; // Filtered on the way out.
            case PartnerRule.None:
                return;
            default:
                throw new RpcException(new Status(StatusCode.PermissionDenied, $"The partner role may not call {context.Method}."));
        }
    }

    private static void RefuseStreamedPartnerRule(Caller caller, AllowAttribute rule, ServerCallContext context)
    {
        if (caller.Role == CallerRole.Partner && rule.Partner != PartnerRule.None)
        {
            throw new RpcException(new Status(StatusCode.PermissionDenied, $"The partner role may not call {context.Method}."));
        }
    }

    /// <summary>Statuses of service requests assigned to other partners become not found, in the order asked.</summary>
    private static void KeepOwnStatuses(Caller caller, BatchGetStatusRequest request, BatchGetStatusResponse response)
    {
        var own = response.Statuses.Where(s => s.PartnerId == caller.PartnerId).ToList();
        if (own.Count == response.Statuses.Count)
        {
            return;
        }

        var found = own.Select(s => s.Id).ToHashSet(StringComparer.Ordinal);
        response.Statuses.Clear();
        response.Statuses.AddRange(own);
        response.NotFoundIds.Clear();
        response.NotFoundIds.AddRange(request.Ids.Where(id => !found.Contains(id)));
    }

    private static bool IsName(string value, int maxLength) =>
        value.Length > 0 && value.Length <= maxLength && !value.Any(char.IsControl) && !string.IsNullOrWhiteSpace(value);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Refused a call to {Method}: {Reason}.")]
    private static partial void LogRefused(ILogger logger, string method, string reason);
}
