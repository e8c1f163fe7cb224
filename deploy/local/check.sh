#!/usr/bin/env bash
# One line per part of the local topology: running or not, answering or not. Exits 0 only when every
# part is up and every service is SERVING both directly and through the gateway, each replica running what
# LABMESH_LOCAL_AOT says (its Native AOT executable, or dotnet and the service's assembly).
source "$(dirname "$0")/lib.sh"

failed=0
report() { # report NAME OK|DOWN DETAIL
  printf '%-26s %-5s %s\n' "$1" "$2" "$3"
  [ "$2" = ok ] || failed=1
}

if postgres_ready 2>/dev/null; then report postgres ok "127.0.0.1:$POSTGRES_PORT"; else report postgres DOWN "127.0.0.1:$POSTGRES_PORT"; fi
if redis_ready 2>/dev/null; then report redis ok "127.0.0.1:$REDIS_PORT"; else report redis DOWN "127.0.0.1:$REDIS_PORT"; fi
for service in "${SERVICES[@]}"; do
  for r in "${REPLICAS[@]}"; do
    name="$service-$r" port=$(replica_port "$service" "$r")
    if ! pid=$(running_pid "$name"); then
      report "$name" DOWN "not running (127.0.0.1:$port)"
      continue
    fi
    # What the process runs: the Native AOT executable (LABMESH_LOCAL_AOT) or dotnet and the service's assembly.
    exe=$(readlink "/proc/$pid/exe" 2>/dev/null || echo unknown)
    if is_aot "$service"; then runs="Native AOT"; expected=$(aot_executable "$service"); else runs=dotnet; expected=""; fi
    if [ -n "$expected" ] && [ "$exe" != "$expected" ]; then
      report "$name" DOWN "127.0.0.1:$port pid $pid runs $exe, not $expected (LABMESH_LOCAL_AOT names $service): ctl.sh stop $name, then start"
    elif [ -z "$expected" ] && [ "${exe##*/}" != dotnet ]; then
      report "$name" DOWN "127.0.0.1:$port pid $pid runs $exe, not dotnet (LABMESH_LOCAL_AOT does not name $service): ctl.sh stop $name, then start"
    elif replica_healthy "$service" "$r" >/dev/null 2>&1; then
      report "$name" ok "127.0.0.1:$port pid $pid SERVING ($runs)"
    else
      report "$name" DOWN "127.0.0.1:$port pid $pid not SERVING ($runs)"
    fi
  done
done
if ! pid=$(running_pid gateway); then
  report gateway DOWN "not running (127.0.0.1:$GATEWAY_PORT)"
elif dotnet "$(cli_dll)" health --target "http://127.0.0.1:$GATEWAY_PORT" --json >/dev/null 2>&1; then
  report gateway ok "127.0.0.1:$GATEWAY_PORT pid $pid, all four services SERVING through it"
else
  report gateway DOWN "127.0.0.1:$GATEWAY_PORT pid $pid, a service is not SERVING through it"
fi
# The Aspire Dashboard is optional: reported only when it was started.
if [ -f "$(pid_file dashboard)" ]; then
  if ! pid=$(running_pid dashboard); then
    report dashboard DOWN "not running (UI 127.0.0.1:$DASHBOARD_UI_PORT)"
  elif dashboard_ready; then
    report dashboard ok "UI http://127.0.0.1:$DASHBOARD_UI_PORT, OTLP/gRPC :$DASHBOARD_OTLP_GRPC_PORT, OTLP/HTTP :$DASHBOARD_OTLP_HTTP_PORT, pid $pid"
  else
    report dashboard DOWN "pid $pid, not answering on 127.0.0.1:$DASHBOARD_UI_PORT or its OTLP ports"
  fi
fi
exit $failed
