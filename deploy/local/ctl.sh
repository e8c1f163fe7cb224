#!/usr/bin/env bash
# Operates one part of a running local topology, e.g. to watch LabMesh survive a crash:
#
#   ctl.sh kill requisition-1      SIGKILL a replica (a crash); stop = SIGTERM and a graceful drain
#   ctl.sh start requisition-1     start it again and wait until it is SERVING
#   ctl.sh kill redis              SIGKILL Redis; start redis brings it back from its append-only file
#   ctl.sh stop postgres           PostgreSQL's fast shutdown; kill postgres = SIGKILL of its postmaster (a crash,
#                                  recovered from the WAL by start postgres)
#   ctl.sh logs notification-2     follow a part's log
#   ctl.sh start dashboard         start the Aspire Dashboard (tools/Aspire.Dashboard) on BASE+90..92; replicas
#                                  started from then on export to it (it names running ones that do not: restart them)
#
# Parts: requisition-N, servicerequest-N, resultsinterpretation-N, notification-N (N = 1, 2), redis, postgres,
# gateway, dashboard.
source "$(dirname "$0")/lib.sh"

usage() { die "usage: ctl.sh stop|kill|start|logs PART (see the top of ctl.sh)"; }
[ $# -eq 2 ] || usage
action=$1 part=$2

case "$part" in
  redis)
    case "$action" in
      stop) stop_redis ;;
      kill) stop_redis kill ;;
      start) start_redis ;;
      logs) exec tail -F "$STATE/logs/redis.log" ;;
      *) usage ;;
    esac ;;
  postgres)
    case "$action" in
      stop) stop_postgres ;;
      kill) kill_postgres ;;
      start) start_postgres ;;
      logs) exec tail -F "$STATE/postgres/postgres.log" ;;
      *) usage ;;
    esac ;;
  dashboard)
    case "$action" in
      stop|kill) stop_dashboard ;;
      start)
        start_dashboard
        # Replicas started while no dashboard ran have no OTLP endpoint; those started with one reconnect by themselves.
        silent=()
        for service in "${SERVICES[@]}"; do
          for r in "${REPLICAS[@]}"; do
            pid=$(running_pid "$service-$r") || continue
            grep -qz '^OTEL_EXPORTER_OTLP_ENDPOINT=' "/proc/$pid/environ" || silent+=("$service-$r")
          done
        done
        [ ${#silent[@]} -eq 0 ] || say "started without an OTLP endpoint, so not exporting to it until restarted: ${silent[*]}" ;;
      logs) exec tail -F "$STATE/logs/dashboard.log" ;;
      *) usage ;;
    esac ;;
  gateway)
    case "$action" in
      stop|kill) stop_gateway ;;
      start) start_gateway ;;
      logs) exec tail -F "$STATE/logs/gateway.log" ;;
      *) usage ;;
    esac ;;
  *-[0-9]*)
    service=${part%-*} replica=${part##*-}
    [ -n "${OFFSET[$service]:-}" ] && [[ " ${REPLICAS[*]} " == *" $replica "* ]] || die "no part named '$part'"
    case "$action" in
      stop) stop_replica "$part" ;;
      kill) stop_replica "$part" kill ;;
      start) start_replica "$service" "$replica"; wait_replica "$service" "$replica" ;;
      logs) exec tail -F "$STATE/logs/$part.log" ;;
      *) usage ;;
    esac ;;
  *) die "no part named '$part'" ;;
esac
