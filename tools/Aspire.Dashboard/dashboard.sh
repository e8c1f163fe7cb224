#!/usr/bin/env bash
# The standalone Aspire Dashboard: a viewer for the traces, metrics and logs LabMesh exports over OTLP,
# without Docker. The NuGet package Aspire.Dashboard.Sdk.linux-x64 ships it as a self-contained
# executable; restoring Aspire.Dashboard.Tool.csproj beside this script fetches it (about 125 MB, once,
# into the NuGet package folder) and the package's build props say where it is (AspireDashboardPath).
#
#   dashboard.sh            run it in the foreground on loopback (Ctrl-C stops it)
#   dashboard.sh path       fetch it if needed and print the executable's path
#
# Ports (all on 127.0.0.1), each can be set from the environment first:
#   LABMESH_DASHBOARD_UI_PORT         the browser UI (18888)
#   LABMESH_DASHBOARD_OTLP_GRPC_PORT  OTLP/gRPC, for OTEL_EXPORTER_OTLP_PROTOCOL=grpc (4317)
#   LABMESH_DASHBOARD_OTLP_HTTP_PORT  OTLP/HTTP, for OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf (4318)
#
# Anyone who can reach these ports can send telemetry to it and read it back (no login, no API key):
# that is why it listens on loopback only. Telemetry is kept in memory and gone when it stops.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
project=$here/Aspire.Dashboard.Tool.csproj

dashboard_path() {
  dotnet restore "$project" -v q -nologo >/dev/null \
    || { echo "dashboard.sh: restoring $project failed (it needs the NuGet feed or a package folder that holds Aspire.Dashboard.Sdk.linux-x64)" >&2; return 1; }
  local path
  path=$(dotnet msbuild "$project" -nologo -getProperty:AspireDashboardPath)
  [ -x "$path" ] || { echo "dashboard.sh: the package has no executable at '$path'" >&2; return 1; }
  echo "$path"
}

case "${1:-run}" in
  path)
    dashboard_path ;;
  run)
    executable=$(dashboard_path)
    ui=${LABMESH_DASHBOARD_UI_PORT:-18888}
    grpc=${LABMESH_DASHBOARD_OTLP_GRPC_PORT:-4317}
    http=${LABMESH_DASHBOARD_OTLP_HTTP_PORT:-4318}
    export ASPNETCORE_URLS=http://127.0.0.1:$ui
    export ASPIRE_DASHBOARD_OTLP_ENDPOINT_URL=http://127.0.0.1:$grpc
    export ASPIRE_DASHBOARD_OTLP_HTTP_ENDPOINT_URL=http://127.0.0.1:$http
    # No browser login and no OTLP API key: acceptable on loopback only (see above).
    export ASPIRE_DASHBOARD_UNSECURED_ALLOW_ANONYMOUS=true
    # Its own data-protection keys and state go under a directory of its own, not the caller's.
    cd "${LABMESH_DASHBOARD_STATE:-${TMPDIR:-/tmp}}"
    exec "$executable" ;;
  *)
    echo "usage: dashboard.sh [run|path]" >&2
    exit 2 ;;
esac
