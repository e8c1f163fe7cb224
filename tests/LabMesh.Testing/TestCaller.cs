using System.Collections.Concurrent;
using Grpc.Core;
using Grpc.Core.Interceptors;
using Grpc.Net.Client;
using LabMesh.Security.Identity;

namespace LabMesh.Testing;

/// <summary>
/// Calls made as a given caller: a bearer token (SECURITY.md) signed with <see cref="Key"/>, a key made
/// for this test process that every host under test trusts (<see cref="HostSettings"/>, which
/// <see cref="ServiceHost"/> applies).
/// </summary>
public static class TestCaller
{
    public const string KeyId = "labmesh-test";

    private static readonly ConcurrentDictionary<(string? Team, CallerRole Role, string Subject, string? Partner), (string Token, DateTime Expires)> Tokens = new();

    /// <summary>The test process's signing key (EC P-256).</summary>
    public static SigningKey Key { get; } = SigningKey.Generate(KeyId);

    /// <summary>
    /// Settings for a host under test: it trusts <see cref="Key"/> and signs its own service tokens with it
    /// (so a service under test can call another one), with the default issuer and audience.
    /// </summary>
    public static IReadOnlyDictionary<string, string?> HostSettings { get; } = new Dictionary<string, string?>
    {
        [$"{SecurityOptions.Section}:SigningKeyId"] = KeyId,
        [$"{SecurityOptions.Section}:SigningKeyPem"] = Key.ExportPrivateKeyPem(),
    };

    /// <summary>
    /// An invoker on <paramref name="channel"/> for <paramref name="team"/>. With a <paramref name="partner"/>
    /// every call is that partner's (role partner); without, each call takes the first role the access
    /// matrix allows for its method, of service, clinician and admin: the caller of a test that is not
    /// about who may call.
    /// </summary>
    public static CallInvoker Invoker(GrpcChannel channel, string team, string? partner = null, string subject = "test-user")
    {
        ArgumentNullException.ThrowIfNull(channel);
        return channel.CreateCallInvoker().Intercept(new TokenInterceptor(method => partner is not null
            ? Token(team, CallerRole.Partner, subject, partner)
            : Token(team, RoleFor(method), subject)));
    }

    /// <summary>An invoker whose every call is made with <paramref name="role"/>.</summary>
    public static CallInvoker InvokerAs(GrpcChannel channel, string team, CallerRole role, string subject = "test-user", string? partner = null)
    {
        ArgumentNullException.ThrowIfNull(channel);
        return channel.CreateCallInvoker().Intercept(new TokenInterceptor(_ => Token(team, role, subject, partner)));
    }

    /// <summary>An invoker that sends <paramref name="headers"/> (a raw token, forged headers...) and nothing else.</summary>
    public static CallInvoker InvokerWithHeaders(GrpcChannel channel, Metadata headers)
    {
        ArgumentNullException.ThrowIfNull(channel);
        ArgumentNullException.ThrowIfNull(headers);
        return channel.CreateCallInvoker().Intercept(metadata =>
        {
            foreach (var entry in headers)
            {
                metadata.Add(entry);
            }

            return metadata;
        });
    }

    /// <summary>A token signed with <see cref="Key"/>, valid one hour (cached until ten minutes before it ends).</summary>
    public static string Token(string? team, CallerRole role, string subject = "test-user", string? partner = null)
    {
        var key = (team, role, subject, partner);
        var now = DateTime.UtcNow;
        if (Tokens.TryGetValue(key, out var cached) && cached.Expires - now > TimeSpan.FromMinutes(10))
        {
            return cached.Token;
        }

        var token = Key.Mint(new TokenIdentity(team, role, subject, partner), "labmesh", "labmesh", TimeSpan.FromHours(1), now);
        Tokens[key] = (token, now.AddHours(1));
        return token;
    }

    /// <summary>The role a test caller without a partner takes for <paramref name="method"/>.</summary>
    public static CallerRole RoleFor(string method)
    {
        var rule = LabMeshApis.Find(method);
        foreach (var role in new[] { CallerRole.Service, CallerRole.Clinician, CallerRole.Admin })
        {
            if (rule is null || rule.Allows(role))
            {
                return role;
            }
        }

        return CallerRole.Service;
    }

    /// <summary>Adds <c>authorization: Bearer</c> with the token for each call's method.</summary>
    private sealed class TokenInterceptor(Func<string, string> token) : Interceptor
    {
        public override TResponse BlockingUnaryCall<TRequest, TResponse>(TRequest request, ClientInterceptorContext<TRequest, TResponse> context, BlockingUnaryCallContinuation<TRequest, TResponse> continuation) =>
            continuation(request, With(context));

        public override AsyncUnaryCall<TResponse> AsyncUnaryCall<TRequest, TResponse>(TRequest request, ClientInterceptorContext<TRequest, TResponse> context, AsyncUnaryCallContinuation<TRequest, TResponse> continuation) =>
            continuation(request, With(context));

        public override AsyncServerStreamingCall<TResponse> AsyncServerStreamingCall<TRequest, TResponse>(TRequest request, ClientInterceptorContext<TRequest, TResponse> context, AsyncServerStreamingCallContinuation<TRequest, TResponse> continuation) =>
            continuation(request, With(context));

        public override AsyncClientStreamingCall<TRequest, TResponse> AsyncClientStreamingCall<TRequest, TResponse>(ClientInterceptorContext<TRequest, TResponse> context, AsyncClientStreamingCallContinuation<TRequest, TResponse> continuation) =>
            continuation(With(context));

        public override AsyncDuplexStreamingCall<TRequest, TResponse> AsyncDuplexStreamingCall<TRequest, TResponse>(ClientInterceptorContext<TRequest, TResponse> context, AsyncDuplexStreamingCallContinuation<TRequest, TResponse> continuation) =>
            continuation(With(context));

        private ClientInterceptorContext<TRequest, TResponse> With<TRequest, TResponse>(ClientInterceptorContext<TRequest, TResponse> context)
            where TRequest : class
            where TResponse : class
        {
            var headers = new Metadata();
            if (context.Options.Headers is { } existing)
            {
                foreach (var entry in existing)
                {
                    headers.Add(entry);
                }
            }

            headers.Add(AuthorizationInterceptor.AuthorizationHeader, "Bearer " + token(context.Method.FullName));
            return new ClientInterceptorContext<TRequest, TResponse>(context.Method, context.Host, context.Options.WithHeaders(headers));
        }
    }
}
