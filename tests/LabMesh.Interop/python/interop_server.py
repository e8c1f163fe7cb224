#!/usr/bin/python3
"""grpc.testing.TestService in Python (Debian's grpcio), for LabMesh's interop client to call.

Implements the "Server" section of gRPC's interop test-case document: payloads of the requested
sizes, Echo Status, Echo Metadata, interval_us, response compression. UnimplementedCall and
UnimplementedService are not registered, so grpcio answers them UNIMPLEMENTED.

Usage: /usr/bin/python3 interop_server.py --port N [--use_tls --tls_cert F --tls_key F] [--proto_root DIR]
Prints "python interop server listening on port N" once it accepts calls (N is real when --port 0).
"""

import argparse
import signal
import sys
import threading
import time
from concurrent import futures

try:
    import grpc
except ImportError as error:  # the test harness reports this line
    sys.exit("interop: grpcio is not importable by %s (apt-get install python3-grpcio): %s" % (sys.executable, error))

import interop_protos

ECHO_INITIAL_KEY = "x-grpc-test-echo-initial"
ECHO_TRAILING_KEY = "x-grpc-test-echo-trailing-bin"
STATUS_BY_NUMBER = {code.value[0]: code for code in grpc.StatusCode}


def build_handler(empty_pb2, messages_pb2):
    def echo_metadata(context):
        metadata = context.invocation_metadata()
        initial = [(k, v) for k, v in metadata if k == ECHO_INITIAL_KEY]
        trailing = [(k, v) for k, v in metadata if k == ECHO_TRAILING_KEY]
        if initial:
            context.send_initial_metadata(initial)
        if trailing:
            context.set_trailing_metadata(trailing)

    def abort_if_echo_status(request, context):
        if request.HasField("response_status") and request.response_status.code != 0:
            code = STATUS_BY_NUMBER.get(request.response_status.code, grpc.StatusCode.UNKNOWN)
            context.abort(code, request.response_status.message)

    def request_compressed(context):
        # grpcio does not expose a message's compressed flag; the call's grpc-encoding stands for it
        # when grpcio passes it through (it may strip it, in which case the check cannot be made).
        for key, value in context.invocation_metadata():
            if key == "grpc-encoding":
                return value != "identity"
        return None

    def check_expect_compressed(expect, context):
        if expect is not None and expect.value and request_compressed(context) is False:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "Expected a compressed request, but it arrived uncompressed.")

    def payload(size, context):
        if size < 0:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "Negative response size %d." % size)
        return messages_pb2.Payload(type=messages_pb2.COMPRESSABLE, body=bytes(size))

    def empty_call(request, context):
        echo_metadata(context)
        return empty_pb2.Empty()

    def unary_call(request, context):
        echo_metadata(context)
        abort_if_echo_status(request, context)
        check_expect_compressed(request.expect_compressed if request.HasField("expect_compressed") else None, context)
        if request.response_type != messages_pb2.COMPRESSABLE:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "Unsupported response type %d." % request.response_type)
        if request.HasField("response_compressed") and request.response_compressed.value:
            context.set_compression(grpc.Compression.Gzip)
        return messages_pb2.SimpleResponse(payload=payload(request.response_size, context))

    def cacheable_unary_call(request, context):
        echo_metadata(context)
        body = str(time.time_ns()).encode("ascii")
        return messages_pb2.SimpleResponse(payload=messages_pb2.Payload(body=body))

    def respond(request, context, compression_set):
        for parameters in request.response_parameters:
            if parameters.interval_us > 0:
                time.sleep(parameters.interval_us / 1e6)
            if not context.is_active():
                return
            compressed = parameters.HasField("compressed") and parameters.compressed.value
            if compressed and not compression_set[0]:
                context.set_compression(grpc.Compression.Gzip)
                compression_set[0] = True
            if compression_set[0] and not compressed:
                context.disable_next_message_compression()
            yield messages_pb2.StreamingOutputCallResponse(payload=payload(parameters.size, context))

    def streaming_output_call(request, context):
        echo_metadata(context)
        abort_if_echo_status(request, context)
        yield from respond(request, context, [False])

    def streaming_input_call(request_iterator, context):
        echo_metadata(context)
        total = 0
        for request in request_iterator:
            check_expect_compressed(request.expect_compressed if request.HasField("expect_compressed") else None, context)
            total += len(request.payload.body)
        return messages_pb2.StreamingInputCallResponse(aggregated_payload_size=total)

    def full_duplex_call(request_iterator, context):
        echo_metadata(context)
        compression_set = [False]
        for request in request_iterator:
            abort_if_echo_status(request, context)
            yield from respond(request, context, compression_set)

    def half_duplex_call(request_iterator, context):
        echo_metadata(context)
        requests = list(request_iterator)
        compression_set = [False]
        for request in requests:
            abort_if_echo_status(request, context)
            yield from respond(request, context, compression_set)

    simple = dict(request_deserializer=messages_pb2.SimpleRequest.FromString,
                  response_serializer=messages_pb2.SimpleResponse.SerializeToString)
    output = dict(request_deserializer=messages_pb2.StreamingOutputCallRequest.FromString,
                  response_serializer=messages_pb2.StreamingOutputCallResponse.SerializeToString)
    handlers = {
        "EmptyCall": grpc.unary_unary_rpc_method_handler(
            empty_call, request_deserializer=empty_pb2.Empty.FromString,
            response_serializer=empty_pb2.Empty.SerializeToString),
        "UnaryCall": grpc.unary_unary_rpc_method_handler(unary_call, **simple),
        "CacheableUnaryCall": grpc.unary_unary_rpc_method_handler(cacheable_unary_call, **simple),
        "StreamingOutputCall": grpc.unary_stream_rpc_method_handler(streaming_output_call, **output),
        "StreamingInputCall": grpc.stream_unary_rpc_method_handler(
            streaming_input_call, request_deserializer=messages_pb2.StreamingInputCallRequest.FromString,
            response_serializer=messages_pb2.StreamingInputCallResponse.SerializeToString),
        "FullDuplexCall": grpc.stream_stream_rpc_method_handler(full_duplex_call, **output),
        "HalfDuplexCall": grpc.stream_stream_rpc_method_handler(half_duplex_call, **output),
        # UnimplementedCall is left out on purpose.
    }
    return grpc.method_handlers_generic_handler("grpc.testing.TestService", handlers)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--use_tls", nargs="?", const="true", default="false", choices=["true", "false"])
    parser.add_argument("--tls_cert", help="server certificate chain (PEM)")
    parser.add_argument("--tls_key", help="server private key (PEM)")
    parser.add_argument("--proto_root")
    args = parser.parse_args()

    empty_pb2, messages_pb2 = interop_protos.testing_messages(interop_protos.find_proto_root(args.proto_root))
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=32),
                         options=[("grpc.max_receive_message_length", 16 * 1024 * 1024)])
    server.add_generic_rpc_handlers((build_handler(empty_pb2, messages_pb2),))
    address = "127.0.0.1:%d" % args.port
    if args.use_tls == "true":
        if not args.tls_cert or not args.tls_key:
            sys.exit("interop: --use_tls needs --tls_cert and --tls_key")
        with open(args.tls_key, "rb") as key_file, open(args.tls_cert, "rb") as cert_file:
            credentials = grpc.ssl_server_credentials([(key_file.read(), cert_file.read())])
        port = server.add_secure_port(address, credentials)
    else:
        port = server.add_insecure_port(address)
    if port == 0:
        sys.exit("interop: could not bind %s" % address)
    server.start()

    stopped = threading.Event()

    def stop(_signum, _frame):
        stopped.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print("python interop server listening on port %d (%s)" % (port, "tls" if args.use_tls == "true" else "h2c"), flush=True)
    while not stopped.wait(0.5):
        pass
    server.stop(grace=1).wait()


if __name__ == "__main__":
    main()
