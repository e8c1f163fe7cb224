#!/usr/bin/python3
"""A Python grpcio client of the real LabMesh services (the all-in-one host, or a gateway).

Stubs are generated at run time from the repository's protos/ with protoc and the gRPC Python
plugin (Debian: protobuf-compiler, protobuf-compiler-grpc; the well-known types from libprotobuf-dev)
into a temporary directory. google.rpc.Status and BadRequest come from google/rpc/*.proto, compiled
the same way: pass the folder that holds google/rpc/ with --google-protos.

Each case prints JSON lines, one per observation ({"case": ..., "step": ..., ...}); the test asserts on
them. Exit code 0: the case ran (whatever the server answered is in the output); 1: it could not.

  /usr/bin/python3 labmesh_client.py --target 127.0.0.1:5000 --google-protos DIR --case all
  (the token: --token, or the LABMESH_TOKEN environment variable)
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import uuid

import grpc

HERE = os.path.dirname(os.path.abspath(__file__))
CASES = ["create_and_read", "subscribe_live", "subscribe_resume", "bad_request"]
LABMESH_PROTOS = [
    "labmesh/common/v1/common.proto",
    "labmesh/common/v1/events.proto",
    "labmesh/common/v1/peer_work.proto",
    "labmesh/servicerequest/v1/service_request.proto",
    "labmesh/requisition/v1/requisition.proto",
    "labmesh/notification/v1/notification.proto",
]
# google/api: the google.api.http options LabMesh's protos carry (their REST paths); the generated modules import them.
GOOGLE_PROTOS = ["google/rpc/status.proto", "google/rpc/error_details.proto", "google/api/http.proto", "google/api/annotations.proto"]
# Debian's libprotobuf-dev installs the well-known types (google/protobuf/*.proto) here.
WELL_KNOWN_TYPES = "/usr/include"


def emit(**fields):
    print(json.dumps(fields, sort_keys=True), flush=True)


def find_protos(explicit):
    candidates = [explicit, os.path.join(HERE, "..", "..", "..", "protos")]
    for candidate in candidates:
        if candidate and os.path.isfile(os.path.join(candidate, "labmesh", "requisition", "v1", "requisition.proto")):
            return os.path.abspath(candidate)
    raise SystemExit("labmesh_client: cannot find protos/ (pass --protos)")


def generate(protos, google_protos):
    """protoc --python_out --grpc_python_out into a temporary directory, which goes on sys.path."""
    protoc = shutil.which("protoc") or "/usr/bin/protoc"
    plugin = shutil.which("grpc_python_plugin") or "/usr/bin/grpc_python_plugin"
    for path, package in [(protoc, "protobuf-compiler"), (plugin, "protobuf-compiler-grpc"),
                          (os.path.join(WELL_KNOWN_TYPES, "google", "protobuf", "timestamp.proto"), "libprotobuf-dev")]:
        if not os.path.exists(path):
            raise SystemExit("labmesh_client: %s is missing (apt-get install %s)" % (path, package))
    if not os.path.isfile(os.path.join(google_protos, GOOGLE_PROTOS[0])):
        raise SystemExit("labmesh_client: %s has no %s (pass --google-protos)" % (google_protos, GOOGLE_PROTOS[0]))
    out = tempfile.mkdtemp(prefix="labmesh-py-stubs-")
    command = [protoc, "--plugin=protoc-gen-grpc_python=" + plugin,
               "-I" + protos, "-I" + google_protos, "-I" + WELL_KNOWN_TYPES,
               "--python_out=" + out, "--grpc_python_out=" + out] + LABMESH_PROTOS + GOOGLE_PROTOS
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SystemExit("labmesh_client: protoc failed: " + result.stderr.strip())
    # `google` is a namespace package (google.protobuf from python3-protobuf), so google.rpc joins it.
    sys.path.insert(0, out)
    return out


class Client:
    def __init__(self, args):
        from labmesh.common.v1 import common_pb2
        from labmesh.notification.v1 import notification_pb2, notification_pb2_grpc
        from labmesh.requisition.v1 import requisition_pb2, requisition_pb2_grpc
        self.common = common_pb2
        self.notification = notification_pb2
        self.requisition = requisition_pb2
        self.timeout = args.timeout
        self.metadata = [("authorization", "Bearer " + args.token)]
        if args.ca_file:
            with open(args.ca_file, "rb") as f:
                credentials = grpc.ssl_channel_credentials(root_certificates=f.read())
            self.channel = grpc.secure_channel(args.target, credentials)
        else:
            self.channel = grpc.insecure_channel(args.target)
        self.requisitions = requisition_pb2_grpc.RequisitionServiceStub(self.channel)
        self.notifications = notification_pb2_grpc.NotificationServiceStub(self.channel)

    def create(self):
        request = self.requisition.CreateRequisitionRequest(
            request_id="py-" + uuid.uuid4().hex,
            patient=self.common.Patient(id="py-patient-1"),
            modality=self.common.TEST_MODALITY_TESTKIT,
            tests=[self.requisition.OrderedTest(code="LIPID_PANEL", partner_id="lab-a"),
                   self.requisition.OrderedTest(code="CBC", partner_id="lab-a")],
            place=True)
        return self.requisitions.CreateRequisition(request, metadata=self.metadata, timeout=self.timeout)

    def subscribe(self, resume_after=""):
        """A Subscribe stream of order.placed events, with a 1 s heartbeat."""
        from google.protobuf import duration_pb2
        request = self.notification.SubscribeRequest(
            filter=self.notification.EventFilter(types=["order.placed"]),
            resume_after=resume_after,
            heartbeat_interval=duration_pb2.Duration(seconds=1))
        return self.notifications.Subscribe(request, metadata=self.metadata, timeout=self.timeout)

    @staticmethod
    def wait_until_live(call):
        """Reads up to the first heartbeat: the server sends one only once it follows the bus and has
        nothing buffered, so whatever happens next reaches this stream. Returns the events before it."""
        earlier = []
        for message in call:
            if message.WhichOneof("item") == "heartbeat":
                return earlier
            earlier.append(message.event.id)
        raise RuntimeError("the Subscribe stream ended before its first heartbeat")

    @staticmethod
    def wait_for_placed(call, requisition_id, seen):
        """Reads the stream (its deadline bounds the wait) until order.placed of requisition_id."""
        for message in call:
            if message.WhichOneof("item") == "event":
                event = message.event
                seen.append({"id": event.id, "type": event.type, "requisition_id": event.requisition_id,
                             "cursor": message.cursor})
                if event.type == "order.placed" and event.requisition_id == requisition_id:
                    return message
        raise RuntimeError("the Subscribe stream ended before order.placed of " + requisition_id)


def requisition_json(client, requisition):
    return {
        "id": requisition.id,
        "team_id": requisition.team_id,
        "status": client.requisition.OrderStatus.Name(requisition.status),
        "sub_status": requisition.sub_status,
        "lifecycle_status": client.requisition.LifecycleStatus.Name(requisition.lifecycle_status),
        "tests": [t.code for t in requisition.tests],
        "service_requests": [{"id": s.id, "requisition_id": s.requisition_id, "code": s.code,
                              "partner_id": s.partner_id, "line": s.line} for s in requisition.service_requests],
    }


def case_create_and_read(client):
    created = client.create()
    emit(case="create_and_read", step="created", created=created.created,
         requisition=requisition_json(client, created.requisition))
    read = client.requisitions.GetRequisition(
        client.requisition.GetRequisitionRequest(id=created.requisition.id), metadata=client.metadata, timeout=client.timeout)
    emit(case="create_and_read", step="read", requisition=requisition_json(client, read.requisition))


def case_subscribe_live(client):
    call = client.subscribe()
    try:
        earlier = client.wait_until_live(call)
        emit(case="subscribe_live", step="live", events_before=len(earlier))
        created = client.create()
        message = client.wait_for_placed(call, created.requisition.id, [])
        event = message.event
        emit(case="subscribe_live", step="event", requisition_id=created.requisition.id,
             event={"id": event.id, "type": event.type, "requisition_id": event.requisition_id,
                    "team_id": event.team_id, "payload": event.WhichOneof("payload"),
                    "modality": event.order_placed.modality,
                    "line_items": [{"service_request_id": i.service_request_id, "code": i.code}
                                   for i in event.order_placed.line_items]},
             cursor=message.cursor,
             service_request_ids=[s.id for s in created.requisition.service_requests])
    finally:
        call.cancel()


def case_subscribe_resume(client):
    # The first order's order.placed, seen live, gives the event id to resume after.
    call = client.subscribe()
    try:
        client.wait_until_live(call)
        first_order = client.create()
        placed = client.wait_for_placed(call, first_order.requisition.id, [])
    finally:
        call.cancel()
    # The second order is placed while nobody follows the stream: only a replay can show it.
    second_order = client.create()
    resumed = client.subscribe(resume_after=placed.event.id)
    replayed = []
    try:
        client.wait_for_placed(resumed, second_order.requisition.id, replayed)
    finally:
        resumed.cancel()
    emit(case="subscribe_resume", step="resumed", resume_after=placed.event.id,
         first_requisition_id=first_order.requisition.id, first_cursor=placed.cursor,
         second_requisition_id=second_order.requisition.id, replayed=replayed)


def case_bad_request(client):
    from google.rpc import error_details_pb2, status_pb2
    request = client.requisition.CreateRequisitionRequest(
        request_id="py-bad-" + uuid.uuid4().hex,
        patient=client.common.Patient(id=""),
        modality=client.common.TEST_MODALITY_TESTKIT,
        tests=[client.requisition.OrderedTest(code="LIPID_PANEL", partner_id="")],
        place=True)
    try:
        client.requisitions.CreateRequisition(request, metadata=client.metadata, timeout=client.timeout)
    except grpc.RpcError as error:
        raw = [value for key, value in (error.trailing_metadata() or ()) if key == "grpc-status-details-bin"]
        details = []
        status_code = None
        if raw:
            status = status_pb2.Status.FromString(raw[0])
            status_code = status.code
            for detail in status.details:
                entry = {"type_url": detail.type_url}
                if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                    bad_request = error_details_pb2.BadRequest()
                    detail.Unpack(bad_request)
                    entry["field_violations"] = [{"field": v.field, "description": v.description}
                                                 for v in bad_request.field_violations]
                details.append(entry)
        emit(case="bad_request", step="error", code=error.code().name, message=error.details(),
             status_details_trailer=bool(raw), status_code=status_code, details=details)
        return
    emit(case="bad_request", step="no_error")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--target", required=True, help="host:port of the LabMesh host")
    parser.add_argument("--token", default=os.environ.get("LABMESH_TOKEN"), help="bearer token (default: $LABMESH_TOKEN)")
    parser.add_argument("--ca-file", help="PEM root certificate: TLS, verifying the server with it")
    parser.add_argument("--protos", help="the repository's protos/ (default: found from this script)")
    parser.add_argument("--google-protos", default=os.environ.get("LABMESH_GOOGLE_PROTOS"),
                        help="a folder holding google/rpc/status.proto and error_details.proto")
    parser.add_argument("--case", default="all", choices=CASES + ["all"])
    parser.add_argument("--timeout", type=float, default=20.0, help="deadline of every call and stream, seconds")
    args = parser.parse_args()
    if not args.token:
        raise SystemExit("labmesh_client: no token (--token or LABMESH_TOKEN)")
    if not args.google_protos:
        raise SystemExit("labmesh_client: --google-protos (or LABMESH_GOOGLE_PROTOS) is required")
    stubs = generate(find_protos(args.protos), args.google_protos)
    try:
        client = Client(args)
        emit(step="start", language="python", grpc=grpc.__version__, tls=bool(args.ca_file))
        for case in CASES if args.case == "all" else [args.case]:
            globals()["case_" + case](client)
        client.channel.close()
        emit(step="done")
    except grpc.RpcError as error:
        emit(step="failed", code=error.code().name, message=error.details())
        return 1
    finally:
        shutil.rmtree(stubs, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
