#!/usr/bin/env bash
# Stops the local topology: the gateway first (no new calls; open streams, such as Subscribe, are closed
# after LABMESH_LOCAL_GATEWAY_SHUTDOWN_TIMEOUT, 5 s), then the replicas (each drains its calls for up to 30 s,
# then is killed), then the Aspire Dashboard if it runs, Redis and PostgreSQL. Each step says what it did.
# Data stays in the state directory for the next up.sh; --purge deletes it.
source "$(dirname "$0")/lib.sh"

purge=0
case "${1:-}" in
  --purge) purge=1 ;;
  "") ;;
  *) die "usage: down.sh [--purge]" ;;
esac

[ -d "$STATE" ] || { say "nothing to stop in $STATE"; exit 0; }
stop_gateway
for service in "${SERVICES[@]}"; do
  for r in "${REPLICAS[@]}"; do stop_replica "$service-$r" & done
done
wait
# After the replicas, which send their last telemetry as they stop.
stop_dashboard
stop_redis
stop_postgres
if [ $purge = 1 ]; then
  rm -rf "$STATE"
  say "deleted $STATE"
fi
say "down in ${SECONDS}s"
