#!/usr/bin/env bash
# A freshly started gateway in front of a running deploy/local topology: seconds to listening, seconds to ready
# (GET /healthz/ready says 200, or 404 for a build without readiness), the process's CPU seconds at that moment, and
# the warm-up's own account (calls forwarded, methods the JIT compiled, why it ended). bench/README.md, "A warm gateway
# before it is ready".
#   LABMESH_LOCAL_PORT_BASE=9400 deploy/local/up.sh
#   LABMESH_LOCAL_PORT_BASE=9400 bench/LabMesh.Bench.Gateway/gateway-start.sh NAME path/to/LabMesh.Gateway.dll [NAME=VALUE ...]
#   LABMESH_LOCAL_PORT_BASE=9400 bench/LabMesh.Bench.Gateway/gateway-start.sh NAME path/to/LabMesh.Gateway [NAME=VALUE ...]
# A .dll runs with dotnet; any other path is an executable run as it is (a Native AOT publish).
# The gateway listens on BASE+96 and BASE+97 (ports deploy/local and the bench leave free) and is stopped at the end.
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: $0 NAME DLL|EXECUTABLE [ENVIRONMENT=VALUE ...]" >&2; exit 2; }
name=$1 path=$2
shift 2
base=${LABMESH_LOCAL_PORT_BASE:-7100}
port=$((base + 96)) rest=$((base + 97))
args=(--Kestrel:Endpoints:Grpc:Url "http://127.0.0.1:$port" --Kestrel:Endpoints:Rest:Url "http://127.0.0.1:$rest")
offset=11
for service in requisition servicerequest resultsinterpretation notification; do
  for r in 1 2; do
    args+=(--ReverseProxy:Clusters:$service:Destinations:$service-$r:Address "http://127.0.0.1:$((base + offset + r - 1))")
  done
  offset=$((offset + 10))
done

readiness() {
  (exec 3<>"/dev/tcp/127.0.0.1/$rest" && printf 'GET /healthz/ready HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n' >&3 && timeout 2 cat <&3) 2>/dev/null | tr -d '\r'
}

case $path in *.dll) run=(dotnet "$path") ;; *) run=("$path") ;; esac
start=$(date +%s%N)
env ASPNETCORE_ENVIRONMENT=Production "$@" "${run[@]}" "${args[@]}" >"/tmp/gateway-start-$name.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
listening=""
while :; do
  kill -0 $pid 2>/dev/null || { echo "$name: the gateway exited; see /tmp/gateway-start-$name.log" >&2; exit 1; }
  if [ -z "$listening" ] && (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then listening=$(( ($(date +%s%N) - start) / 1000000 )); fi
  answer=$(readiness || true)
  code=$(printf '%s\n' "$answer" | head -n 1 | awk '{print $2}')
  if [ "$code" = 200 ] || [ "$code" = 404 ]; then break; fi
  sleep 0.05
done
ready=$(( ($(date +%s%N) - start) / 1000000 ))
# Readiness (the REST port) can answer before the gRPC port was seen listening: then both opened by then.
[ -n "$listening" ] || listening="<$ready"
cpu=$(awk -v hz="$(getconf CLK_TCK)" '{printf "%.2f", ($14 + $15) / hz}' "/proc/$pid/stat")
rss=$(awk '/^VmRSS:/ {printf "%.1f", $2 * 1024 / 1e6}' "/proc/$pid/status")
what=$([ "$code" = 404 ] && echo "no readiness endpoint: ready when listening" || printf '%s\n' "$answer" | tail -n 1)
echo "$name: listening ${listening} ms, ready ${ready} ms (HTTP $code), CPU at ready ${cpu} s, RSS at ready ${rss} MB, load $(cut -d' ' -f1 /proc/loadavg); $what"
