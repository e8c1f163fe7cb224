using System.Buffers;
using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;
using System.IO.Pipelines;
using System.Reflection;
using Google.Protobuf;
using Google.Protobuf.Reflection;
using Any = Google.Protobuf.WellKnownTypes.Any;
using Google.Rpc;
using Grpc.AspNetCore.Server;
using Grpc.AspNetCore.Server.Model;
using Grpc.Core;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace LabMesh.ServiceDefaults.Hosting;

/// <summary>
/// A request that is not a well-formed gRPC message is the caller's mistake: INVALID_ARGUMENT with a
/// <c>google.rpc.BadRequest</c>, nothing logged as an error, nothing stored. grpc-dotnet answers UNKNOWN
/// and logs an error with a stack trace for bytes that do not parse, and INTERNAL for a frame cut short,
/// a bad compressed-flag byte, a compressed message without <c>grpc-encoding</c>, and zero or two messages
/// to a method that takes one. Both happen before any interceptor runs, so they are handled below them:
/// <list type="bullet">
/// <item>Parsing: every method is bound with a request marshaller that turns a parse failure into
/// INVALID_ARGUMENT (<see cref="StrictServiceMethodProvider{TService}"/>, which takes the place of
/// grpc-dotnet's own binder provider and binds the generated <c>BindService</c> the same way).</item>
/// <item>Framing: the request body is read through <see cref="FramingReader"/>, which follows the
/// length-prefixed frames as grpc-dotnet reads them and fails the read with INVALID_ARGUMENT at the first
/// framing error, before grpc-dotnet would answer INTERNAL.</item>
/// </list>
/// A declared length over the receive limit is left to grpc-dotnet, which answers RESOURCE_EXHAUSTED.
/// </summary>
public static class MalformedRequests
{
    /// <summary>Binds every gRPC service with request marshallers that answer INVALID_ARGUMENT for bytes that do not parse.</summary>
    public static IServiceCollection AddStrictRequestParsing(this IServiceCollection services)
    {
        ArgumentNullException.ThrowIfNull(services);
        // grpc-dotnet registers its binder provider as an open generic; one provider per service must bind it,
        // or every method would be mapped twice.
        var upstream = services.Where(d => d.ServiceType == typeof(IServiceMethodProvider<>)
            && d.ImplementationType is { Name: "BinderServiceMethodProvider`1" }).ToList();
        if (upstream.Count == 0)
        {
            throw new InvalidOperationException("AddGrpc() must come before AddStrictRequestParsing(): grpc-dotnet's binder provider was not found.");
        }

        foreach (var descriptor in upstream)
        {
            services.Remove(descriptor);
        }

        services.AddSingleton(typeof(IServiceMethodProvider<>), typeof(StrictServiceMethodProvider<>));
        return services;
    }

    /// <summary>Reads every gRPC request body through <see cref="FramingReader"/>.</summary>
    public static IApplicationBuilder UseStrictRequestFraming(this IApplicationBuilder app)
    {
        ArgumentNullException.ThrowIfNull(app);
        var maxMessageSize = app.ApplicationServices.GetRequiredService<IOptions<GrpcServiceOptions>>().Value.MaxReceiveMessageSize;
        return app.Use(next => context =>
        {
            // A transcoded REST route carries the same metadata, but its body is JSON, read by the transcoder.
            if (context.GetEndpoint() is { } endpoint && endpoint.Metadata.GetMetadata<GrpcMethodMetadata>() is { } grpc
                && !RestEndpoints.IsRest(endpoint))
            {
                var single = grpc.Method.Type is MethodType.Unary or MethodType.ServerStreaming;
                var reader = new FramingReader(context.Request.BodyReader, single, maxMessageSize, context.Request.Headers["grpc-encoding"].ToString());
                context.Features.Set<IRequestBodyPipeFeature>(new BodyPipe(reader));
            }

            return next(context);
        });
    }

    /// <summary>INVALID_ARGUMENT with a <c>google.rpc.BadRequest</c> naming the request message as a whole.</summary>
    internal static RpcException Invalid(string description) => Invalid("", description);

    /// <summary>INVALID_ARGUMENT with a <c>google.rpc.BadRequest</c> naming <paramref name="field"/> (a path such as <c>tests[1].code</c>).</summary>
    internal static RpcException Invalid(string field, string description)
    {
        var message = field.Length == 0 ? description : $"{field}: {description}";
        var status = new Google.Rpc.Status
        {
            Code = (int)StatusCode.InvalidArgument,
            Message = message,
            Details =
            {
                Any.Pack(new BadRequest { FieldViolations = { new BadRequest.Types.FieldViolation { Field = field, Description = description } } }),
            },
        };
        return status.ToRpcException();
    }

    /// <summary>A request of no bytes, which a protobuf message parser reads as the default message.</summary>
    internal sealed class EmptyPayload : DeserializationContext
    {
        public static EmptyPayload Instance { get; } = new();

        public override int PayloadLength => 0;

        public override byte[] PayloadAsNewBuffer() => [];

        public override ReadOnlySequence<byte> PayloadAsReadOnlySequence() => ReadOnlySequence<byte>.Empty;
    }

    private sealed class BodyPipe(PipeReader reader) : IRequestBodyPipeFeature
    {
        public PipeReader Reader { get; } = reader;
    }
}

/// <summary>
/// Binds the generated <c>BindService(ServiceBinderBase, TServiceBase)</c> of <typeparamref name="TService"/>
/// as grpc-dotnet does, each method's request marshaller wrapped so that a message that does not parse is
/// INVALID_ARGUMENT (see <see cref="MalformedRequests"/>).
/// </summary>
/// <remarks>
/// <typeparamref name="TService"/> carries grpc-dotnet's own annotation of <c>IServiceMethodProvider&lt;TService&gt;</c> (public
/// constructors, public and non-public methods), no more: the container refuses, in a trimmed executable, an open generic
/// whose implementation asks for more than its service type.
/// </remarks>
internal sealed class StrictServiceMethodProvider<[DynamicallyAccessedMembers(GrpcActivation.ServiceAccessibility)] TService> : IServiceMethodProvider<TService>
    where TService : class
{
    public void OnServiceMethodDiscovery(ServiceMethodProviderContext<TService> context)
    {
        for (var type = typeof(TService); type is not null; type = type.BaseType)
        {
            if (type.GetCustomAttribute<BindServiceMethodAttribute>(inherit: false) is not { } bind)
            {
                continue;
            }

            var method = bind.BindType.GetMethod(bind.BindMethodName, BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Static, [typeof(ServiceBinderBase), type])
                ?? throw new InvalidOperationException($"{bind.BindType} has no {bind.BindMethodName}(ServiceBinderBase, {type.Name}).");
            method.Invoke(null, [new Binder(context, type), null]);
            return;
        }
    }

    private sealed class Binder(ServiceMethodProviderContext<TService> context, Type serviceBase) : ServiceBinderBase
    {
        public override void AddMethod<TRequest, TResponse>(Method<TRequest, TResponse> method, UnaryServerMethod<TRequest, TResponse>? handler) =>
            context.AddUnaryMethod(Strict(method), Metadata(method.Name, [typeof(TRequest), typeof(ServerCallContext)], out var target),
                target.CreateDelegate<UnaryServerMethod<TService, TRequest, TResponse>>());

        public override void AddMethod<TRequest, TResponse>(Method<TRequest, TResponse> method, ServerStreamingServerMethod<TRequest, TResponse>? handler) =>
            context.AddServerStreamingMethod(Strict(method), Metadata(method.Name, [typeof(TRequest), typeof(IServerStreamWriter<TResponse>), typeof(ServerCallContext)], out var target),
                target.CreateDelegate<ServerStreamingServerMethod<TService, TRequest, TResponse>>());

        public override void AddMethod<TRequest, TResponse>(Method<TRequest, TResponse> method, ClientStreamingServerMethod<TRequest, TResponse>? handler) =>
            context.AddClientStreamingMethod(Strict(method), Metadata(method.Name, [typeof(IAsyncStreamReader<TRequest>), typeof(ServerCallContext)], out var target),
                target.CreateDelegate<ClientStreamingServerMethod<TService, TRequest, TResponse>>());

        public override void AddMethod<TRequest, TResponse>(Method<TRequest, TResponse> method, DuplexStreamingServerMethod<TRequest, TResponse>? handler) =>
            context.AddDuplexStreamingMethod(Strict(method), Metadata(method.Name, [typeof(IAsyncStreamReader<TRequest>), typeof(IServerStreamWriter<TResponse>), typeof(ServerCallContext)], out var target),
                target.CreateDelegate<DuplexStreamingServerMethod<TService, TRequest, TResponse>>());

        private static Method<TRequest, TResponse> Strict<TRequest, TResponse>(Method<TRequest, TResponse> method)
            where TRequest : class
            where TResponse : class
        {
            var parse = method.RequestMarshaller.ContextualDeserializer;
            var what = $"The request is not a {method.ServiceName}/{method.Name} request message: its bytes do not parse.";
            // An empty payload parses to the default message: its descriptor, without constructing TRequest by reflection.
            var descriptor = (parse(MalformedRequests.EmptyPayload.Instance) as IMessage)?.Descriptor;
            var strict = Marshallers.Create(method.RequestMarshaller.ContextualSerializer, context =>
            {
                try
                {
                    return parse(context);
                }
                catch (InvalidProtocolBufferException)
                {
                    // Google.Protobuf refuses a string that is not UTF-8 without saying which: find it, to name it.
                    var field = descriptor is null ? null : InvalidUtf8.Find(descriptor, context.PayloadAsReadOnlySequence().ToArray());
                    throw field is null
                        ? MalformedRequests.Invalid(what)
                        : MalformedRequests.Invalid(field, "must be valid UTF-8 text.");
                }
            });
            return new Method<TRequest, TResponse>(method.Type, method.ServiceName, method.Name, strict, method.ResponseMarshaller);
        }

        /// <summary>
        /// The service's override of the generated virtual method (a method of the same name that hides it is
        /// skipped, as grpc-dotnet does), and the endpoint metadata grpc-dotnet gives it: the service type's
        /// attributes, then the method's, then POST only.
        /// </summary>
        private List<object> Metadata(string name, Type[] parameters, out MethodInfo target)
        {
            MethodInfo? found = null;
            for (var type = typeof(TService); type is not null && found is null; type = type.BaseType)
            {
                var candidate = type.GetMethod(name, BindingFlags.Public | BindingFlags.Instance, parameters);
                if (candidate is { IsVirtual: true } && candidate.GetBaseDefinition().DeclaringType == serviceBase)
                {
                    found = candidate;
                }
            }

            target = found ?? throw new InvalidOperationException($"Could not find '{name}' on {typeof(TService)}.");
            var metadata = new List<object>();
            metadata.AddRange(typeof(TService).GetCustomAttributes(inherit: true));
            metadata.AddRange(target.GetCustomAttributes(inherit: true));
            metadata.Add(new HttpMethodMetadata(["POST"], acceptCorsPreflight: true));
            return metadata;
        }
    }
}

/// <summary>
/// Which string field of a message's bytes is not UTF-8, for an error that names it: Google.Protobuf refuses
/// such a message (proto3 strings are UTF-8) but says only that some string was not. Walks the wire format
/// with the message's descriptor; only called once a parse has failed.
/// </summary>
internal static class InvalidUtf8
{
    /// <summary>The path of the first string field (e.g. <c>tests[1].code</c>) whose bytes are not UTF-8, or null.</summary>
    public static string? Find(MessageDescriptor descriptor, byte[] message)
    {
        try
        {
            return Walk(descriptor, new CodedInputStream(message));
        }
        catch (InvalidProtocolBufferException)
        {
            // Broken in some other way: the caller answers for the message as a whole.
            return null;
        }
    }

    private static string? Walk(MessageDescriptor descriptor, CodedInputStream input)
    {
        var seen = new Dictionary<int, int>();
        for (var tag = input.ReadTag(); tag != 0; tag = input.ReadTag())
        {
            var number = WireFormat.GetTagFieldNumber(tag);
            var field = descriptor.FindFieldByNumber(number);
            if (field is null || WireFormat.GetTagWireType(tag) != WireFormat.WireType.LengthDelimited
                || field.FieldType is not (FieldType.String or FieldType.Message))
            {
                input.SkipLastField();
                continue;
            }

            var index = seen.GetValueOrDefault(number);
            seen[number] = index + 1;
            var name = field.IsRepeated ? $"{field.Name}[{index}]" : field.Name;
            var bytes = input.ReadBytes();
            if (field.FieldType == FieldType.String)
            {
                if (!System.Text.Unicode.Utf8.IsValid(bytes.Span))
                {
                    return name;
                }
            }
            else if (Walk(field.MessageType, new CodedInputStream(bytes.ToByteArray())) is { } inner)
            {
                return $"{name}.{inner}";
            }
        }

        return null;
    }
}

/// <summary>
/// A request body reader that follows gRPC's length-prefixed frames (a compressed-flag byte, a 4-byte
/// big-endian length, the message) over every byte as it first passes through, and fails the read with
/// INVALID_ARGUMENT at the first framing error: a flag other than 0 or 1, a compressed message without a
/// usable <c>grpc-encoding</c>, a frame the body ends inside, and (for a method that takes one message)
/// no message or a second one. Everything else is passed through untouched.
/// </summary>
internal sealed class FramingReader(PipeReader inner, bool singleMessage, int? maxMessageSize, string encoding) : PipeReader
{
    private const int HeaderSize = 5;
    private readonly byte[] _header = new byte[HeaderSize];
    private int _headerFilled;
    private long _payloadLeft;
    private int _frames;
    private bool _oversize;
    private long _consumed;
    private long _seen;
    private ReadOnlySequence<byte> _last;

    public override async ValueTask<ReadResult> ReadAsync(CancellationToken cancellationToken = default) =>
        Check(await inner.ReadAsync(cancellationToken));

    public override bool TryRead(out ReadResult result)
    {
        if (!inner.TryRead(out result))
        {
            return false;
        }

        result = Check(result);
        return true;
    }

    public override void AdvanceTo(SequencePosition consumed)
    {
        _consumed += _last.Slice(_last.Start, consumed).Length;
        inner.AdvanceTo(consumed);
    }

    public override void AdvanceTo(SequencePosition consumed, SequencePosition examined)
    {
        _consumed += _last.Slice(_last.Start, consumed).Length;
        inner.AdvanceTo(consumed, examined);
    }

    public override void CancelPendingRead() => inner.CancelPendingRead();

    public override void Complete(Exception? exception = null) => inner.Complete(exception);

    public override ValueTask CompleteAsync(Exception? exception = null) => inner.CompleteAsync(exception);

    private ReadResult Check(ReadResult result)
    {
        _last = result.Buffer;
        var end = _consumed + result.Buffer.Length;
        if (end > _seen && !_oversize)
        {
            foreach (var segment in result.Buffer.Slice(_seen - _consumed))
            {
                Follow(segment.Span);
            }
        }

        _seen = Math.Max(_seen, end);
        if (result.IsCompleted && !_oversize)
        {
            if (_headerFilled > 0 || _payloadLeft > 0)
            {
                throw MalformedRequests.Invalid("The request body ends inside a gRPC frame: the message was cut short.");
            }

            if (singleMessage && _frames == 0)
            {
                throw MalformedRequests.Invalid("The request has no message: this method takes exactly one.");
            }
        }

        return result;
    }

    private void Follow(ReadOnlySpan<byte> bytes)
    {
        while (!bytes.IsEmpty && !_oversize)
        {
            if (_payloadLeft > 0)
            {
                var skip = (int)Math.Min(_payloadLeft, bytes.Length);
                _payloadLeft -= skip;
                bytes = bytes[skip..];
                continue;
            }

            var take = Math.Min(HeaderSize - _headerFilled, bytes.Length);
            bytes[..take].CopyTo(_header.AsSpan(_headerFilled));
            _headerFilled += take;
            bytes = bytes[take..];
            if (_headerFilled < HeaderSize)
            {
                return;
            }

            _headerFilled = 0;
            OnHeader(_header[0], BinaryPrimitives.ReadUInt32BigEndian(_header.AsSpan(1)));
        }
    }

    private void OnHeader(byte flag, uint length)
    {
        if (flag > 1)
        {
            throw MalformedRequests.Invalid($"A gRPC frame's compressed flag is {flag}: only 0 and 1 exist.");
        }

        if (flag == 1 && (encoding.Length == 0 || encoding == "identity"))
        {
            throw MalformedRequests.Invalid("A message is marked compressed but the request names no grpc-encoding.");
        }

        if (++_frames > 1 && singleMessage)
        {
            throw MalformedRequests.Invalid("The request has more than one message: this method takes exactly one.");
        }

        if (length > (uint)(maxMessageSize ?? int.MaxValue))
        {
            // grpc-dotnet answers RESOURCE_EXHAUSTED for it; nothing after it is followed.
            _oversize = true;
            return;
        }

        _payloadLeft = length;
    }
}
