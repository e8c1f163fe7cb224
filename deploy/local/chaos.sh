#!/usr/bin/env bash
# The fault-injection run (issue 23) on a topology of its own: starts deploy/local (up.sh), times each replica to
# SERVING at idle, drives orders, results and critical results through the gateway while it kills and stops
# replicas, Redis and PostgreSQL on a schedule (ctl.sh), verifies every write, critical result, stream event and
# webhook, prints the table and tears down (down.sh --purge). 5-10 minutes with the defaults (more on a loaded
# machine: every restart is timed to SERVING before the schedule goes on); loopback only.
#
#   chaos.sh                      the default run (180 s of load, port base 7800, its own state directory)
#   chaos.sh --duration 900       longer; chaos.sh --help lists every option (bench/LabMesh.Chaos)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
dotnet build "$root/bench/LabMesh.Chaos" -c Release -v q -nologo >/dev/null || { echo "chaos.sh: building bench/LabMesh.Chaos failed" >&2; exit 1; }
exec dotnet "$root/bench/LabMesh.Chaos/bin/Release/net10.0/LabMesh.Chaos.dll" "$@"
