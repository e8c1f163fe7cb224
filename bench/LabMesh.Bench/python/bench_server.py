#!/usr/bin/python3
"""labmesh.bench.v1.BenchService on Python grpcio (Debian's python3-grpcio), for LabMesh.Bench.

The same two methods as the LabMesh side (Servers/BenchServiceImpl.cs): Unary answers with a
response whose payload has the requested size, ServerStream sends it message_count times; the
response is built once per size and reused, so what is measured is grpcio, not the handler.

The message classes come from the descriptor of Protos/bench.proto that the bench passes in
(--descriptor, a base64 FileDescriptorProto from the C# generated code), so no protoc is needed.

Usage: /usr/bin/python3 bench_server.py --descriptor BASE64
Listens on a free port of 127.0.0.1 with grpc.aio, prints "LISTENING http://127.0.0.1:N" once it
accepts calls, and stops when standard input closes.
"""

import argparse
import asyncio
import base64
import sys

try:
    import grpc
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
except ImportError as error:
    sys.exit("bench: grpcio or protobuf is not importable by %s (apt-get install python3-grpcio python3-protobuf): %s"
             % (sys.executable, error))

SERVICE = "labmesh.bench.v1.BenchService"


def message_classes(descriptor_base64):
    pool = descriptor_pool.DescriptorPool()
    pool.Add(descriptor_pb2.FileDescriptorProto.FromString(base64.b64decode(descriptor_base64)))
    factory = message_factory.MessageFactory(pool)
    return tuple(factory.GetPrototype(pool.FindMessageTypeByName("labmesh.bench.v1." + name))
                 for name in ("BenchRequest", "BenchResponse"))


class Responses:
    """One response per payload size, built on first use (zero bytes: uncompressed, protobuf only copies them)."""

    def __init__(self, response_class):
        self._class = response_class
        self._by_size = {}

    def of_size(self, size):
        response = self._by_size.get(size)
        if response is None:
            response = self._class(payload=bytes(size))
            self._by_size[size] = response
        return response


def method_handlers(request_class, response_class, responses):
    async def unary(request, context):
        return responses.of_size(request.response_size)

    async def server_stream(request, context):
        response = responses.of_size(request.response_size)
        for _ in range(request.message_count):
            yield response

    io = dict(request_deserializer=request_class.FromString, response_serializer=response_class.SerializeToString)
    return grpc.method_handlers_generic_handler(SERVICE, {
        "Unary": grpc.unary_unary_rpc_method_handler(unary, **io),
        "ServerStream": grpc.unary_stream_rpc_method_handler(server_stream, **io),
    })


def wait_for_stdin_eof():
    # The bench closes our stdin to stop us; if the bench dies, stdin closes too.
    while sys.stdin.buffer.read(256):
        pass


async def serve(handler):
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    print("LISTENING http://127.0.0.1:%d" % port, flush=True)
    await asyncio.get_running_loop().run_in_executor(None, wait_for_stdin_eof)
    await server.stop(grace=1)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--descriptor", required=True, help="base64 FileDescriptorProto of bench.proto")
    args = parser.parse_args()

    request_class, response_class = message_classes(args.descriptor)
    asyncio.run(serve(method_handlers(request_class, response_class, Responses(response_class))))


if __name__ == "__main__":
    main()
