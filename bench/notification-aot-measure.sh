#!/bin/bash
# One Notification replica (Development, SQLite, in-process bus, rate limit off) started from the command given, then:
# VmRSS 10 s after start, CPU per call over 10,000 GetWebhookEndpoint calls after 2,000 of warm-up (h2load -c 4 -m 8,
# apt-get install nghttp2-client), again over 10,000 after 20,000 more, and VmRSS after the load and 20 s later. CPU is
# the process's utime+stime from /proc/PID/stat. bench/README.md, "Notification as a Native AOT executable".
#   bench/notification-aot-measure.sh aot 18751 artifacts/aot/Release/LabMesh.Notification/LabMesh.Notification
#   bench/notification-aot-measure.sh jit 18752 dotnet services/LabMesh.Notification/bin/Release/net10.0/LabMesh.Notification.dll
# Needs the CLI built (tools/LabMesh.Cli, for a development token) and buf (npx @bufbuild/buf) for the one create.
set -euo pipefail
name=$1; port=$2; shift 2
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cli=$(ls "$root"/tools/LabMesh.Cli/bin/*/net10.0/labmesh.dll | head -n 1)
command=("$@"); [[ "${command[0]}" == /* || "${command[0]}" == dotnet ]] || command[0]="$root/${command[0]}"
[[ "${command[0]}" != dotnet ]] || command[1]="$root/${command[1]}"
dir=/tmp/notification-aot-measure-$name; rm -rf "$dir"; mkdir -p "$dir/data"; cd "$dir"
LabMesh__Limits__PermitsPerSecond=0 ASPNETCORE_ENVIRONMENT=Development LabMesh__Storage__DataDirectory="$dir/data" \
  "${command[@]}" --urls "http://127.0.0.1:$port" > "$dir/out.log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do grep -q "Application started" "$dir/out.log" && break; sleep 0.2; done
sleep 10
rss() { awk '/VmRSS/{printf "%.1f", $2/1024}' "/proc/$pid/status"; }
cpu() { awk '{print $14+$15}' "/proc/$pid/stat"; }
echo "$name VmRSS 10 s after start: $(rss) MB"
token=$(LABMESH_DEV_KEY="$dir/data/dev-signing-key.json" dotnet "$cli" token --role admin --team t1 2>/dev/null)
id=$(npx --yes @bufbuild/buf curl --http2-prior-knowledge --protocol grpc -H "authorization: Bearer $token" \
  -d '{"request_id":"11111111-1111-4111-8111-111111111111","url":"https://hooks.example.com/x","event_types":["order.status_changed"]}' \
  "http://127.0.0.1:$port/labmesh.notification.v1.NotificationService/CreateWebhookEndpoint" \
  | python3 -c "import json,sys;print(json.load(sys.stdin)['endpoint']['id'])")
# The request, gRPC-framed: no compression flag, its length, then field 1 (id) of GetWebhookEndpointRequest.
python3 -c "import sys,struct;i=sys.argv[1].encode();m=b'\x0a'+bytes([len(i)])+i;sys.stdout.buffer.write(b'\x00'+struct.pack('>I',len(m))+m)" "$id" > "$dir/req.bin"
run() {
  h2load -n "$1" -c 4 -m 8 -d "$dir/req.bin" -H 'content-type: application/grpc' -H 'te: trailers' -H "authorization: Bearer $token" \
    "http://127.0.0.1:$port/labmesh.notification.v1.NotificationService/GetWebhookEndpoint" | grep -E "finished in|traffic:"
}
measure() {
  local c0 c1
  c0=$(cpu); run 10000; c1=$(cpu)
  echo "$name $1: CPU per call $(python3 -c "print(round(($c1-$c0)/$(getconf CLK_TCK)*1e6/10000))") us, VmRSS $(rss) MB"
}
run 2000 > /dev/null
measure "calls 2,001-12,000"
run 20000 > /dev/null
measure "calls 32,001-42,000"
sleep 20
echo "$name VmRSS 20 s after the load: $(rss) MB"
kill "$pid"; wait "$pid" 2>/dev/null || true
