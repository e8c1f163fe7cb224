"""Compiles the grpc.testing protos (and, on request, health/reflection) with protoc at run time.

Debian's grpcio has no generated grpc.testing modules and python3-grpc-tools is not installed,
so the message classes are made here with `protoc --python_out` into a temporary directory and
loaded by file path under private module names. (They cannot be imported as `grpc.testing.*`:
that package name belongs to grpcio itself.) Only files without imports are loaded this way,
which is all the interop messages, health and reflection need.
"""

import atexit
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
SYSTEM_PROTO_ROOT = "/usr/share/grpc-proto"


def find_proto_root(explicit=None):
    """The directory holding grpc/testing/messages.proto: explicit, $LABMESH_PROTO_ROOT, beside the
    build output (../protos) or in the source tree (../../../protos)."""
    candidates = [explicit, os.environ.get("LABMESH_PROTO_ROOT"),
                  os.path.join(HERE, "..", "protos"),
                  os.path.join(HERE, "..", "..", "..", "protos")]
    for candidate in candidates:
        if candidate and os.path.isfile(os.path.join(candidate, "grpc", "testing", "messages.proto")):
            return os.path.abspath(candidate)
    raise SystemExit("interop: cannot find grpc/testing/messages.proto (pass --proto_root)")


def _protoc():
    protoc = os.environ.get("PROTOC") or shutil.which("protoc") or "/usr/bin/protoc"
    if not os.path.exists(protoc) and not shutil.which(protoc):
        raise SystemExit("interop: protoc not found (apt-get install protobuf-compiler)")
    return protoc


def load(relative_paths, proto_root):
    """Compiles each proto (a path relative to a proto root) and returns {relative_path: module}.
    A file missing from proto_root is looked up in Debian's grpc-proto directory."""
    out = tempfile.mkdtemp(prefix="labmesh-interop-pb-")
    atexit.register(shutil.rmtree, out, True)
    modules = {}
    for relative in relative_paths:
        root = proto_root
        if not os.path.isfile(os.path.join(root, relative)):
            root = SYSTEM_PROTO_ROOT
            if not os.path.isfile(os.path.join(root, relative)):
                raise SystemExit("interop: %s found neither under %s nor under %s (apt-get install grpc-proto)"
                                 % (relative, proto_root, SYSTEM_PROTO_ROOT))
        result = subprocess.run([_protoc(), "-I" + root, "--python_out=" + out, relative],
                                capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise SystemExit("interop: protoc failed for %s: %s" % (relative, result.stderr.strip()))
        generated = os.path.join(out, relative[:-len(".proto")] + "_pb2.py")
        name = "labmesh_interop_pb." + relative[:-len(".proto")].replace("/", "_").replace(".", "_")
        spec = importlib.util.spec_from_file_location(name, generated)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        modules[relative] = module
    return modules


def testing_messages(proto_root):
    """(empty_pb2, messages_pb2) for grpc.testing."""
    modules = load(["grpc/testing/empty.proto", "grpc/testing/messages.proto"], proto_root)
    return modules["grpc/testing/empty.proto"], modules["grpc/testing/messages.proto"]
