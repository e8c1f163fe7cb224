#!/usr/bin/python3
"""The gRPC interop test cases, client side, in Python (Debian's grpcio), against any
grpc.testing.TestService server (LabMesh's in particular).

Usage: /usr/bin/python3 interop_client.py --server_host H --server_port P --test_case NAME[,NAME...]|all
           [--use_tls] [--server_host_override NAME] [--ca_file CA.pem] [--proto_root DIR]
Besides the interop cases: health_check (grpc.health.v1 Check of "" is SERVING) and
reflection_list (grpc.reflection v1 and v1alpha list TestService).
Exits 0 when every case passed; otherwise prints "FAILED <case>: <reason>" to stderr and exits 1.
"""

import argparse
import queue
import sys
import threading

try:
    import grpc
except ImportError as error:  # the test harness reports this line
    sys.exit("interop: grpcio is not importable by %s (apt-get install python3-grpcio): %s" % (sys.executable, error))

import interop_protos

LARGE_REQUEST = 271828
LARGE_RESPONSE = 314159
REQUEST_SIZES = [27182, 8, 1828, 45904]
RESPONSE_SIZES = [31415, 9, 2653, 58979]
ECHO_INITIAL = ("x-grpc-test-echo-initial", "test_initial_metadata_value")
ECHO_TRAILING = ("x-grpc-test-echo-trailing-bin", b"\xab\xab\xab")
SPECIAL_MESSAGE = "\t\ntest with whitespace\r\nand Unicode BMP \u263a and non-BMP \U0001f608\t\n"
CALL_TIMEOUT = 30.0

INTEROP_CASES = [
    "empty_unary", "large_unary", "client_streaming", "server_streaming", "ping_pong", "empty_stream",
    "cancel_after_begin", "cancel_after_first_response", "timeout_on_sleeping_server",
    "status_code_and_message", "special_status_message", "custom_metadata",
    "unimplemented_method", "unimplemented_service",
    "client_compressed_unary", "server_compressed_unary", "client_compressed_streaming", "server_compressed_streaming",
]
EXTRA_CASES = ["health_check", "reflection_list"]


class CaseFailed(Exception):
    pass


def check(condition, message):
    if not condition:
        raise CaseFailed(message)


class Pipe:
    """A request iterator the test feeds one message at a time (for ping-pong and cancellation)."""

    _CLOSE = object()

    def __init__(self):
        self._queue = queue.Queue()

    def add(self, message):
        self._queue.put(message)

    def close(self):
        self._queue.put(self._CLOSE)

    def __iter__(self):
        return self

    def __next__(self):
        item = self._queue.get()
        if item is self._CLOSE:
            raise StopIteration()
        return item


def expect_error(action, code, what):
    try:
        action()
    except grpc.RpcError as error:
        check(error.code() == code, "%s ended %s (%r), expected %s" % (what, error.code(), error.details(), code))
        return error
    raise CaseFailed("%s succeeded, expected %s" % (what, code))


class Client:
    def __init__(self, channel, empty_pb2, messages_pb2, proto_root):
        self.channel = channel
        self.proto_root = proto_root
        self.empty = empty_pb2
        self.m = messages_pb2
        m = messages_pb2

        def method(kind, name, request, response, service="grpc.testing.TestService"):
            return getattr(channel, kind)("/%s/%s" % (service, name),
                                          request_serializer=request.SerializeToString,
                                          response_deserializer=response.FromString)

        self.empty_call = method("unary_unary", "EmptyCall", empty_pb2.Empty, empty_pb2.Empty)
        self.unary_call = method("unary_unary", "UnaryCall", m.SimpleRequest, m.SimpleResponse)
        self.streaming_output_call = method("unary_stream", "StreamingOutputCall", m.StreamingOutputCallRequest, m.StreamingOutputCallResponse)
        self.streaming_input_call = method("stream_unary", "StreamingInputCall", m.StreamingInputCallRequest, m.StreamingInputCallResponse)
        self.full_duplex_call = method("stream_stream", "FullDuplexCall", m.StreamingOutputCallRequest, m.StreamingOutputCallResponse)
        self.unimplemented_call = method("unary_unary", "UnimplementedCall", empty_pb2.Empty, empty_pb2.Empty)
        self.unimplemented_service_call = method("unary_unary", "UnimplementedCall", empty_pb2.Empty, empty_pb2.Empty,
                                                 service="grpc.testing.UnimplementedService")

    # helpers
    def zeros(self, size):
        return self.m.Payload(body=bytes(size))

    def large_request(self, **fields):
        return self.m.SimpleRequest(response_size=LARGE_RESPONSE, payload=self.zeros(LARGE_REQUEST), **fields)

    def output_request(self, response_size, request_size):
        return self.m.StreamingOutputCallRequest(
            response_parameters=[self.m.ResponseParameters(size=response_size)], payload=self.zeros(request_size))

    @staticmethod
    def check_payload(payload, size, what):
        check(len(payload.body) == size, "%s payload is %d bytes, expected %d" % (what, len(payload.body), size))
        check(payload.body.count(0) == size, "%s payload is not all zeros" % what)

    # cases
    def empty_unary(self):
        response = self.empty_call(self.empty.Empty(), timeout=CALL_TIMEOUT)
        check(response is not None, "EmptyCall returned no response")

    def large_unary(self):
        response = self.unary_call(self.large_request(), timeout=CALL_TIMEOUT)
        self.check_payload(response.payload, LARGE_RESPONSE, "UnaryCall response")

    def client_streaming(self):
        requests = (self.m.StreamingInputCallRequest(payload=self.zeros(size)) for size in REQUEST_SIZES)
        response = self.streaming_input_call(requests, timeout=CALL_TIMEOUT)
        check(response.aggregated_payload_size == 74922,
              "aggregated_payload_size is %d, expected 74922" % response.aggregated_payload_size)

    def server_streaming(self):
        request = self.m.StreamingOutputCallRequest(
            response_parameters=[self.m.ResponseParameters(size=size) for size in RESPONSE_SIZES])
        responses = list(self.streaming_output_call(request, timeout=CALL_TIMEOUT))
        sizes = [len(r.payload.body) for r in responses]
        check(sizes == RESPONSE_SIZES, "response sizes are %s, expected %s" % (sizes, RESPONSE_SIZES))
        for index, response in enumerate(responses):
            self.check_payload(response.payload, RESPONSE_SIZES[index], "response %d" % index)

    def ping_pong(self):
        pipe = Pipe()
        responses = self.full_duplex_call(pipe, timeout=CALL_TIMEOUT)
        try:
            for index, (request_size, response_size) in enumerate(zip(REQUEST_SIZES, RESPONSE_SIZES)):
                pipe.add(self.output_request(response_size, request_size))
                response = next(responses)
                self.check_payload(response.payload, response_size, "response %d" % index)
        finally:
            pipe.close()
        check(next(responses, None) is None, "more than four responses")
        check(responses.code() == grpc.StatusCode.OK, "status is %s, expected OK" % responses.code())

    def empty_stream(self):
        responses = list(self.full_duplex_call(iter([]), timeout=CALL_TIMEOUT))
        check(len(responses) == 0, "%d responses on an empty stream" % len(responses))

    def cancel_after_begin(self):
        pipe = Pipe()
        future = self.streaming_input_call.future(pipe, timeout=CALL_TIMEOUT)
        future.cancel()
        check(future.cancelled(), "the call was not cancelled")
        check(future.code() == grpc.StatusCode.CANCELLED, "status is %s, expected CANCELLED" % future.code())
        pipe.close()

    def cancel_after_first_response(self):
        pipe = Pipe()
        responses = self.full_duplex_call(pipe, timeout=CALL_TIMEOUT)
        pipe.add(self.output_request(31415, 27182))
        response = next(responses)
        self.check_payload(response.payload, 31415, "the first response")
        responses.cancel()
        expect_error(lambda: next(responses), grpc.StatusCode.CANCELLED, "FullDuplexCall cancelled after the first response")
        pipe.close()

    def timeout_on_sleeping_server(self):
        pipe = Pipe()
        responses = self.full_duplex_call(pipe, timeout=0.001)
        pipe.add(self.m.StreamingOutputCallRequest(payload=self.zeros(27182)))
        try:
            expect_error(lambda: next(responses), grpc.StatusCode.DEADLINE_EXCEEDED, "FullDuplexCall with a 1 ms deadline")
        finally:
            pipe.close()

    def status_code_and_message(self):
        message = "test status message"
        status = self.m.EchoStatus(code=2, message=message)
        error = expect_error(lambda: self.unary_call(self.m.SimpleRequest(response_status=status), timeout=CALL_TIMEOUT),
                             grpc.StatusCode.UNKNOWN, "UnaryCall with response_status")
        check(error.details() == message, "UnaryCall status message is %r, expected %r" % (error.details(), message))
        request = self.m.StreamingOutputCallRequest(response_status=status)
        error = expect_error(lambda: list(self.full_duplex_call(iter([request]), timeout=CALL_TIMEOUT)),
                             grpc.StatusCode.UNKNOWN, "FullDuplexCall with response_status")
        check(error.details() == message, "FullDuplexCall status message is %r, expected %r" % (error.details(), message))

    def special_status_message(self):
        status = self.m.EchoStatus(code=2, message=SPECIAL_MESSAGE)
        error = expect_error(lambda: self.unary_call(self.m.SimpleRequest(response_status=status), timeout=CALL_TIMEOUT),
                             grpc.StatusCode.UNKNOWN, "UnaryCall with a special response_status message")
        check(error.details() == SPECIAL_MESSAGE, "status message is %r, expected %r" % (error.details(), SPECIAL_MESSAGE))

    def check_echo(self, initial, trailing, what):
        initial_values = [v for k, v in initial if k == ECHO_INITIAL[0]]
        trailing_values = [v for k, v in trailing if k == ECHO_TRAILING[0]]
        check(initial_values == [ECHO_INITIAL[1]], "%s: response headers %s have %r, expected %r"
              % (what, ECHO_INITIAL[0], initial_values, [ECHO_INITIAL[1]]))
        check(trailing_values == [ECHO_TRAILING[1]], "%s: trailers %s have %r, expected %r"
              % (what, ECHO_TRAILING[0], trailing_values, [ECHO_TRAILING[1]]))

    def custom_metadata(self):
        metadata = [ECHO_INITIAL, ECHO_TRAILING]
        response, call = self.unary_call.with_call(self.large_request(), metadata=metadata, timeout=CALL_TIMEOUT)
        self.check_payload(response.payload, LARGE_RESPONSE, "UnaryCall response")
        self.check_echo(call.initial_metadata(), call.trailing_metadata(), "UnaryCall")

        request = self.m.StreamingOutputCallRequest(
            response_parameters=[self.m.ResponseParameters(size=LARGE_RESPONSE)], payload=self.zeros(LARGE_REQUEST))
        responses = self.full_duplex_call(iter([request]), metadata=metadata, timeout=CALL_TIMEOUT)
        received = list(responses)
        check(len(received) == 1, "FullDuplexCall sent %d responses, expected 1" % len(received))
        self.check_payload(received[0].payload, LARGE_RESPONSE, "FullDuplexCall response")
        self.check_echo(responses.initial_metadata(), responses.trailing_metadata(), "FullDuplexCall")

    def unimplemented_method(self):
        expect_error(lambda: self.unimplemented_call(self.empty.Empty(), timeout=CALL_TIMEOUT),
                     grpc.StatusCode.UNIMPLEMENTED, "TestService/UnimplementedCall")

    def unimplemented_service(self):
        expect_error(lambda: self.unimplemented_service_call(self.empty.Empty(), timeout=CALL_TIMEOUT),
                     grpc.StatusCode.UNIMPLEMENTED, "UnimplementedService/UnimplementedCall")

    def client_compressed_unary(self):
        expect = self.large_request(expect_compressed=self.m.BoolValue(value=True))
        expect_error(lambda: self.unary_call(expect, timeout=CALL_TIMEOUT),
                     grpc.StatusCode.INVALID_ARGUMENT, "the uncompressed probe with expect_compressed")
        response = self.unary_call(expect, timeout=CALL_TIMEOUT, compression=grpc.Compression.Gzip)
        self.check_payload(response.payload, LARGE_RESPONSE, "the response to the compressed request")
        plain = self.large_request(expect_compressed=self.m.BoolValue(value=False))
        response = self.unary_call(plain, timeout=CALL_TIMEOUT)
        self.check_payload(response.payload, LARGE_RESPONSE, "the response to the uncompressed request")

    def server_compressed_unary(self):
        # grpcio hides the compressed flag of received messages: sizes and success are checked.
        for compressed in (True, False):
            request = self.large_request(response_compressed=self.m.BoolValue(value=compressed))
            response = self.unary_call(request, timeout=CALL_TIMEOUT)
            self.check_payload(response.payload, LARGE_RESPONSE, "response_compressed=%s" % compressed)

    def client_compressed_streaming(self):
        first = self.m.StreamingInputCallRequest(expect_compressed=self.m.BoolValue(value=True), payload=self.zeros(27182))
        expect_error(lambda: self.streaming_input_call(iter([first]), timeout=CALL_TIMEOUT),
                     grpc.StatusCode.INVALID_ARGUMENT, "the uncompressed probe with expect_compressed")
        # grpcio compresses a whole call or nothing, so the second message is compressed too;
        # the server only checks messages that expect compression.
        second = self.m.StreamingInputCallRequest(expect_compressed=self.m.BoolValue(value=False), payload=self.zeros(45904))
        response = self.streaming_input_call(iter([first, second]), timeout=CALL_TIMEOUT, compression=grpc.Compression.Gzip)
        check(response.aggregated_payload_size == 73086,
              "aggregated_payload_size is %d, expected 73086" % response.aggregated_payload_size)

    def server_compressed_streaming(self):
        request = self.m.StreamingOutputCallRequest(response_parameters=[
            self.m.ResponseParameters(size=31415, compressed=self.m.BoolValue(value=True)),
            self.m.ResponseParameters(size=92653, compressed=self.m.BoolValue(value=False))])
        sizes = [len(r.payload.body) for r in self.streaming_output_call(request, timeout=CALL_TIMEOUT)]
        check(sizes == [31415, 92653], "response sizes are %s, expected [31415, 92653]" % sizes)

    # LabMesh's other services, called with grpcio as a third-party client
    def health_check(self):
        health = interop_protos.load(["grpc/health/v1/health.proto"], self.proto_root)["grpc/health/v1/health.proto"]
        check_call = self.channel.unary_unary("/grpc.health.v1.Health/Check",
                                              request_serializer=health.HealthCheckRequest.SerializeToString,
                                              response_deserializer=health.HealthCheckResponse.FromString)
        response = check_call(health.HealthCheckRequest(service=""), timeout=CALL_TIMEOUT)
        check(response.status == health.HealthCheckResponse.SERVING,
              "health of \"\" is %s, expected SERVING" % health.HealthCheckResponse.ServingStatus.Name(response.status))
        expect_error(lambda: check_call(health.HealthCheckRequest(service="no.such.Service"), timeout=CALL_TIMEOUT),
                     grpc.StatusCode.NOT_FOUND, "health Check of an unknown service")

    def reflection_list(self):
        for version in ("v1", "v1alpha"):
            relative = "grpc/reflection/%s/reflection.proto" % version
            reflection = interop_protos.load([relative], self.proto_root)[relative]
            info = self.channel.stream_stream("/grpc.reflection.%s.ServerReflection/ServerReflectionInfo" % version,
                                              request_serializer=reflection.ServerReflectionRequest.SerializeToString,
                                              response_deserializer=reflection.ServerReflectionResponse.FromString)
            responses = list(info(iter([reflection.ServerReflectionRequest(list_services="")]), timeout=CALL_TIMEOUT))
            check(len(responses) == 1, "reflection %s: %d responses, expected 1" % (version, len(responses)))
            check(responses[0].HasField("list_services_response"),
                  "reflection %s answered %s, not a service list" % (version, responses[0].WhichOneof("message_response")))
            names = [s.name for s in responses[0].list_services_response.service]
            check("grpc.testing.TestService" in names,
                  "reflection %s lists %s, without grpc.testing.TestService" % (version, names))

            files = list(info(iter([reflection.ServerReflectionRequest(file_containing_symbol="grpc.testing.TestService")]),
                              timeout=CALL_TIMEOUT))
            check(len(files) == 1 and files[0].HasField("file_descriptor_response")
                  and len(files[0].file_descriptor_response.file_descriptor_proto) > 0,
                  "reflection %s: no file descriptor for grpc.testing.TestService" % version)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--server_host", default="localhost")
    parser.add_argument("--server_port", type=int, required=True)
    parser.add_argument("--test_case", required=True, help="a case name, several separated by commas, or all")
    parser.add_argument("--use_tls", nargs="?", const="true", default="false", choices=["true", "false"])
    parser.add_argument("--server_host_override")
    parser.add_argument("--ca_file")
    parser.add_argument("--proto_root")
    args = parser.parse_args()

    cases = INTEROP_CASES if args.test_case == "all" else args.test_case.split(",")
    for case in cases:
        if case not in INTEROP_CASES + EXTRA_CASES:
            sys.exit("interop: unknown test case %r (known: %s)" % (case, ", ".join(INTEROP_CASES + EXTRA_CASES)))

    proto_root = interop_protos.find_proto_root(args.proto_root)
    empty_pb2, messages_pb2 = interop_protos.testing_messages(proto_root)
    target = "%s:%d" % (args.server_host, args.server_port)
    options = [("grpc.max_receive_message_length", 16 * 1024 * 1024)]
    if args.use_tls == "true":
        root = None
        if args.ca_file:
            with open(args.ca_file, "rb") as ca_file:
                root = ca_file.read()
        if args.server_host_override:
            options.append(("grpc.ssl_target_name_override", args.server_host_override))
        channel = grpc.secure_channel(target, grpc.ssl_channel_credentials(root_certificates=root), options=options)
    else:
        if args.server_host_override:
            options.append(("grpc.default_authority", args.server_host_override))
        channel = grpc.insecure_channel(target, options=options)

    failed = 0
    with channel:
        client = Client(channel, empty_pb2, messages_pb2, proto_root)
        for case in cases:
            try:
                getattr(client, case)()
                print("PASSED %s" % case, flush=True)
            except CaseFailed as error:
                failed += 1
                print("FAILED %s: %s" % (case, error), file=sys.stderr, flush=True)
            except grpc.RpcError as error:
                failed += 1
                print("FAILED %s: unexpected status %s %r" % (case, error.code(), error.details()), file=sys.stderr, flush=True)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
