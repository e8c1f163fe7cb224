#!/usr/bin/python3
"""A small grpcurl: lists, describes and calls a gRPC server's services using only server reflection.

It is a second, independent client for LabMesh's reflection service (Debian's grpcio and protobuf, no
generated code, not even for the reflection protocol itself), run by the xunit tests.

    reflection_client.py HOST:PORT list
    reflection_client.py HOST:PORT describe SYMBOL
    reflection_client.py HOST:PORT call SERVICE/METHOD JSON_BODY

Options: --api v1|v1alpha (default v1), --timeout SECONDS (default 10).
Exit code 0 on success; 1 when the server answers with an error (printed to stderr as "ERROR <code> <message>").
"""

import argparse
import queue
import sys

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory

_FIELD = descriptor_pb2.FieldDescriptorProto


def _message_class(descriptor):
    """The message class for a descriptor, across protobuf versions (GetMessageClass is 4.22+)."""
    get_message_class = getattr(message_factory, "GetMessageClass", None)
    if get_message_class is not None:
        return get_message_class(descriptor)
    return message_factory.MessageFactory(descriptor.file.pool).GetPrototype(descriptor)


def _reflection_messages(package):
    """Builds the reflection protocol's request and response classes from a hand-written descriptor.

    Only the field numbers and types matter on the wire; they follow grpc/reflection/v1/reflection.proto
    (v1alpha is identical under another package).
    """
    file_proto = descriptor_pb2.FileDescriptorProto(
        name="labmesh_reflection_client/%s.proto" % package, package=package, syntax="proto3")

    def message(name, fields, oneof=None):
        msg = file_proto.message_type.add(name=name)
        if oneof:
            msg.oneof_decl.add(name=oneof)
        for field_name, number, field_type, extra in fields:
            field = msg.field.add(name=field_name, number=number, type=field_type,
                                  label=_FIELD.LABEL_REPEATED if extra.get("repeated") else _FIELD.LABEL_OPTIONAL)
            if "type_name" in extra:
                field.type_name = ".%s.%s" % (package, extra["type_name"])
            if extra.get("oneof"):
                field.oneof_index = 0

    string, int32, bytes_, msg_ = _FIELD.TYPE_STRING, _FIELD.TYPE_INT32, _FIELD.TYPE_BYTES, _FIELD.TYPE_MESSAGE
    message("ExtensionRequest", [("containing_type", 1, string, {}), ("extension_number", 2, int32, {})])
    message("ServerReflectionRequest", [
        ("host", 1, string, {}),
        ("file_by_filename", 3, string, {"oneof": True}),
        ("file_containing_symbol", 4, string, {"oneof": True}),
        ("file_containing_extension", 5, msg_, {"oneof": True, "type_name": "ExtensionRequest"}),
        ("all_extension_numbers_of_type", 6, string, {"oneof": True}),
        ("list_services", 7, string, {"oneof": True}),
    ], oneof="message_request")
    message("FileDescriptorResponse", [("file_descriptor_proto", 1, bytes_, {"repeated": True})])
    message("ExtensionNumberResponse", [("base_type_name", 1, string, {}),
                                        ("extension_number", 2, int32, {"repeated": True})])
    message("ServiceResponse", [("name", 1, string, {})])
    message("ListServiceResponse", [("service", 1, msg_, {"repeated": True, "type_name": "ServiceResponse"})])
    message("ErrorResponse", [("error_code", 1, int32, {}), ("error_message", 2, string, {})])
    message("ServerReflectionResponse", [
        ("valid_host", 1, string, {}),
        ("original_request", 2, msg_, {"type_name": "ServerReflectionRequest"}),
        ("file_descriptor_response", 4, msg_, {"oneof": True, "type_name": "FileDescriptorResponse"}),
        ("all_extension_numbers_response", 5, msg_, {"oneof": True, "type_name": "ExtensionNumberResponse"}),
        ("list_services_response", 6, msg_, {"oneof": True, "type_name": "ListServiceResponse"}),
        ("error_response", 7, msg_, {"oneof": True, "type_name": "ErrorResponse"}),
    ], oneof="message_response")

    pool = descriptor_pool.DescriptorPool()
    pool.Add(file_proto)
    return (_message_class(pool.FindMessageTypeByName(package + ".ServerReflectionRequest")),
            _message_class(pool.FindMessageTypeByName(package + ".ServerReflectionResponse")))


class ReflectionError(Exception):
    def __init__(self, code, message):
        super().__init__("%d %s" % (code, message))
        self.code = code


class ReflectionSession:
    """One ServerReflectionInfo stream; every question is asked on it, as grpcurl does."""

    def __init__(self, channel, api, timeout):
        package = "grpc.reflection." + api
        self._request_class, self._response_class = _reflection_messages(package)
        # A generic stub: bytes in, bytes out; (de)serialization is ours.
        rpc = channel.stream_stream(
            "/%s.ServerReflection/ServerReflectionInfo" % package,
            request_serializer=lambda message: message.SerializeToString(),
            response_deserializer=self._response_class.FromString)
        self._requests = queue.Queue()
        self._responses = rpc(iter(self._requests.get, None), timeout=timeout)

    def ask(self, **request):
        self._requests.put(self._request_class(**request))
        response = next(self._responses)
        if response.WhichOneof("message_response") == "error_response":
            raise ReflectionError(response.error_response.error_code, response.error_response.error_message)
        return response

    def end_requests(self):
        self._requests.put(None)

    def close(self):
        """Half-closes the stream and waits for the server to end it."""
        self.end_requests()
        for _ in self._responses:
            pass

    def list_services(self):
        return [s.name for s in self.ask(list_services="").list_services_response.service]

    def load_symbol(self, pool, loaded, symbol):
        """Adds the file declaring a symbol, and its imports, to the pool; returns that file's name."""
        return self._add_files(pool, loaded, self.ask(file_containing_symbol=symbol))

    def _add_files(self, pool, loaded, response):
        # The server sends the declaring file first, then all of its imports; a pool needs imports added first.
        files = {}
        for raw in response.file_descriptor_response.file_descriptor_proto:
            proto = descriptor_pb2.FileDescriptorProto.FromString(raw)
            files[proto.name] = (proto, raw)

        def add(name):
            if name in loaded:
                return
            if name not in files:
                # Allowed by the protocol: a file sent earlier on the stream may be left out.
                self._add_files(pool, loaded, self.ask(file_by_filename=name))
                return
            proto, raw = files[name]
            for dependency in proto.dependency:
                add(dependency)
            pool.AddSerializedFile(raw)
            loaded.add(name)

        for name in files:
            add(name)
        return next(iter(files), "")


def _type_name(descriptor):
    return "." + descriptor.full_name


def _find(finder, name):
    try:
        return finder(name)
    except KeyError:
        return None


def _method_line(method):
    # Streaming flags read from the method's proto: not every protobuf runtime exposes them directly.
    method_proto = descriptor_pb2.MethodDescriptorProto()
    method.CopyToProto(method_proto)
    request_stream = "stream " if method_proto.client_streaming else ""
    response_stream = "stream " if method_proto.server_streaming else ""
    return "rpc %s ( %s%s ) returns ( %s%s );" % (
        method.name, request_stream, _type_name(method.input_type), response_stream, _type_name(method.output_type))


def describe(pool, symbol, declaring_file):
    """Prints a service, method, message or enum roughly the way grpcurl's describe does."""
    service = _find(pool.FindServiceByName, symbol)
    if service is not None:
        lines = ["%s is a service:" % service.full_name, "service %s {" % service.name]
        lines += ["  " + _method_line(method) for method in service.methods]
        return "\n".join(lines + ["}"])

    method = _find(pool.FindMethodByName, symbol)
    if method is not None:
        return "%s is a method:\n%s" % (method.full_name, _method_line(method))

    message = _find(pool.FindMessageTypeByName, symbol)
    if message is not None:
        lines = ["%s is a message:" % message.full_name, "message %s {" % message.name]
        for field in message.fields:
            if field.message_type is not None:
                type_name = _type_name(field.message_type)
            elif field.enum_type is not None:
                type_name = _type_name(field.enum_type)
            else:
                type_name = _SCALAR_NAMES.get(field.type, str(field.type))
            label = "repeated " if field.label == field.LABEL_REPEATED else ""
            lines.append("  %s%s %s = %d;" % (label, type_name, field.name, field.number))
        return "\n".join(lines + ["}"])

    enum = _find(pool.FindEnumTypeByName, symbol)
    if enum is not None:
        lines = ["%s is an enum:" % enum.full_name, "enum %s {" % enum.name]
        lines += ["  %s = %d;" % (value.name, value.number) for value in enum.values]
        return "\n".join(lines + ["}"])

    # A field, enum value or extension: the server found it, so name the file that declares it.
    return "%s is declared in %s" % (symbol, declaring_file)


_SCALAR_NAMES = {
    _FIELD.TYPE_DOUBLE: "double", _FIELD.TYPE_FLOAT: "float", _FIELD.TYPE_INT64: "int64",
    _FIELD.TYPE_UINT64: "uint64", _FIELD.TYPE_INT32: "int32", _FIELD.TYPE_FIXED64: "fixed64",
    _FIELD.TYPE_FIXED32: "fixed32", _FIELD.TYPE_BOOL: "bool", _FIELD.TYPE_STRING: "string",
    _FIELD.TYPE_BYTES: "bytes", _FIELD.TYPE_UINT32: "uint32", _FIELD.TYPE_SFIXED32: "sfixed32",
    _FIELD.TYPE_SFIXED64: "sfixed64", _FIELD.TYPE_SINT32: "sint32", _FIELD.TYPE_SINT64: "sint64",
}


def call(channel, session, pool, loaded, method_path, body, timeout):
    """Makes a unary call with a JSON body, types resolved through reflection; returns the JSON response."""
    service_name, _, method_name = method_path.replace("/", ".").rpartition(".")
    session.load_symbol(pool, loaded, service_name)
    method = pool.FindServiceByName(service_name).methods_by_name[method_name]
    request_class = _message_class(method.input_type)
    response_class = _message_class(method.output_type)
    request = json_format.Parse(body, request_class())
    rpc = channel.unary_unary(
        "/%s/%s" % (service_name, method_name),
        request_serializer=lambda message: message.SerializeToString(),
        response_deserializer=response_class.FromString)
    response = rpc(request, timeout=timeout)
    return json_format.MessageToJson(response, indent=2)


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("target", help="HOST:PORT (plaintext HTTP/2)")
    parser.add_argument("--api", choices=["v1", "v1alpha"], default="v1")
    parser.add_argument("--timeout", type=float, default=10.0)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list")
    describe_parser = commands.add_parser("describe")
    describe_parser.add_argument("symbol")
    call_parser = commands.add_parser("call")
    call_parser.add_argument("method", help="package.Service/Method")
    call_parser.add_argument("body", help="the request as JSON")
    args = parser.parse_args(argv)

    with grpc.insecure_channel(args.target) as channel:
        session = ReflectionSession(channel, args.api, args.timeout)
        pool = descriptor_pool.DescriptorPool()
        loaded = set()
        try:
            if args.command == "list":
                for name in sorted(session.list_services()):
                    print(name)
            elif args.command == "describe":
                declaring_file = session.load_symbol(pool, loaded, args.symbol)
                print(describe(pool, args.symbol, declaring_file))
            else:
                print(call(channel, session, pool, loaded, args.method, args.body, args.timeout))
            session.close()
        except ReflectionError as error:
            print("ERROR %s" % error, file=sys.stderr)
            return 1
        except grpc.RpcError as error:
            print("RPC ERROR %s %s" % (error.code().name, error.details()), file=sys.stderr)
            return 1
        finally:
            # Lets grpcio's request-sending thread finish even when we stopped early.
            session.end_requests()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
