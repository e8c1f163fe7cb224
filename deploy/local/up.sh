#!/usr/bin/env bash
# Starts LabMesh's distributed topology on this machine: PostgreSQL, Redis, two replicas of each of the
# four services (separate processes on their own loopback ports) and the gateway (services/LabMesh.Gateway,
# YARP) in front of them for gRPC and REST.
# Waits until every part answers, then prints where the gateway is. See README.md here.
# The services LABMESH_LOCAL_AOT names (lib.sh) run as Native AOT executables, published first when out of date.
#
#   up.sh               the topology; the replicas export telemetry only if OTEL_EXPORTER_OTLP_ENDPOINT is set
#   up.sh --dashboard   also the Aspire Dashboard (tools/Aspire.Dashboard), started first, and every replica
#                       exports its traces, metrics and logs to it (unless OTEL_EXPORTER_OTLP_ENDPOINT says otherwise)
source "$(dirname "$0")/lib.sh"

dashboard=${LABMESH_LOCAL_DASHBOARD:-0}
for argument in "$@"; do
  case "$argument" in
    --dashboard) dashboard=1 ;;
    *) die "usage: up.sh [--dashboard]" ;;
  esac
done

missing=()
command -v redis-server >/dev/null || missing+=(redis-server)
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || missing+=(postgresql)
command -v dotnet >/dev/null || die "the .NET SDK is not on PATH"
command -v openssl >/dev/null || missing+=(openssl)
[ "$dashboard" != 1 ] || command -v curl >/dev/null || missing+=(curl)
# A Native AOT publish (the gateway always; the services LABMESH_LOCAL_AOT names) links with the C toolchain (gcc, its
# binutils, libc6-dev); zlib comes with the runtime pack.
command -v gcc >/dev/null || missing+=(gcc)
compgen -G "/usr/lib/*-linux-gnu/crt1.o" >/dev/null || missing+=(libc6-dev)
command -v flock >/dev/null || missing+=(util-linux)
[ ${#missing[@]} -eq 0 ] || die "missing Debian packages: ${missing[*]} (sudo apt-get install -y ${missing[*]})"

mkdir -p "$STATE/run" "$STATE/logs"
if [ "${LABMESH_LOCAL_NO_BUILD:-0}" != 1 ]; then
  say "building the services, the gateway and the labmesh command ($CONFIGURATION)"
  for service in "${SERVICES[@]}"; do
    dotnet build "$LABMESH_ROOT/services/${PROJECT[$service]}" -c "$CONFIGURATION" -v q -nologo >/dev/null \
      || die "building ${PROJECT[$service]} failed (run: dotnet build services/${PROJECT[$service]})"
  done
  dotnet build "$LABMESH_ROOT/services/LabMesh.Gateway" -c "$CONFIGURATION" -v q -nologo >/dev/null || die "building the gateway failed (run: dotnet build services/LabMesh.Gateway)"
  dotnet build "$LABMESH_ROOT/tools/LabMesh.Cli" -c "$CONFIGURATION" -v q -nologo >/dev/null || die "building the labmesh command failed"
fi
# The Native AOT executables (LABMESH_LOCAL_AOT), published only when a source is newer than the executable; also
# with LABMESH_LOCAL_NO_BUILD, which says the assemblies are built, not that the native code is current.
for service in "${AOT_SERVICES[@]}"; do publish_aot "$service"; done
publish_aot gateway

ensure_keys
start_postgres
start_redis
[ "$dashboard" != 1 ] || start_dashboard
for service in "${SERVICES[@]}"; do
  for r in "${REPLICAS[@]}"; do start_replica "$service" "$r"; done
done
for service in "${SERVICES[@]}"; do
  for r in "${REPLICAS[@]}"; do wait_replica "$service" "$r"; done
done
start_gateway
wait_for "the gateway's health checks" 30 dotnet "$(cli_dll)" health --target "http://127.0.0.1:$GATEWAY_PORT" --json

say "up. The gateway: 127.0.0.1:$GATEWAY_PORT (gRPC, h2c) and 127.0.0.1:$GATEWAY_REST_PORT (REST, JSON over HTTP/1.1). Try:"
echo "  export LABMESH_DEV_KEY=$(key_file)   # the labmesh command signs its tokens with the topology's key"
echo "  dotnet $(cli_dll) demo --target http://127.0.0.1:$GATEWAY_PORT"
echo "  grpcurl -plaintext 127.0.0.1:$GATEWAY_PORT list   # the whole API; -H 'x-labmesh-service: notification' for one process's own"
echo "  curl -H \"authorization: Bearer \$(dotnet $(cli_dll) token --role clinician)\" http://127.0.0.1:$GATEWAY_REST_PORT/v1/requisitions"
echo "  $(dirname "$0")/check.sh      # every part, one line each"
echo "  $(dirname "$0")/down.sh       # stop it all (--purge also deletes $STATE)"
if running_pid dashboard >/dev/null; then
  echo "  traces, metrics and logs of every replica: http://127.0.0.1:$DASHBOARD_UI_PORT (Aspire Dashboard)"
fi
