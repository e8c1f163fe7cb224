# Shared by up.sh, check.sh, ctl.sh and down.sh (sourced, not run): where the local topology keeps its
# files and which loopback ports it uses. Every value can be set from the environment first.
#
#   LABMESH_LOCAL_STATE      its files: data, logs, pid files, generated configuration (/tmp/labmesh-local)
#   LABMESH_LOCAL_PORT_BASE  the first of the 100 ports it uses (7100): the gateway on BASE (gRPC, h2c) and
#                            BASE+1 (REST, HTTP/1.1), the replicas on BASE+11/12 (requisition), +21/22
#                            (servicerequest), +31/32 (resultsinterpretation), +41/42 (notification) and their
#                            REST listeners 4 above each (+15/16, ...), PostgreSQL on BASE+54,
#                            Redis on BASE+79, and the Aspire Dashboard when started: its UI on BASE+90,
#                            OTLP/gRPC on BASE+91, OTLP/HTTP on BASE+92
#   LABMESH_LOCAL_CONFIGURATION  the build configuration the services run from (Release)
#   LABMESH_LOCAL_NO_BUILD   1: run what is already built instead of building first
#   LABMESH_LOCAL_AOT        the services whose replicas run as Native AOT executables, a list of the names below
#                            (e.g. servicerequest; spaces or commas between them; empty: none): AOT_DEFAULT unless
#                            set. up.sh publishes each (dotnet publish -r linux-x64 -p:PublishAot=true) into
#                            LABMESH_LOCAL_AOT_DIR (artifacts/aot) when its sources are newer than the executable,
#                            with or without LABMESH_LOCAL_NO_BUILD, so a replica never runs stale native code
#   LABMESH_LOCAL_GATEWAY_SHUTDOWN_TIMEOUT  seconds a stopping gateway lets open calls and streams run (5)
#   LABMESH_LOCAL_TRUST_KEY_ID, LABMESH_LOCAL_TRUST_KEY_PEM  one more public key (PEM) whose tokens the
#                            services accept, besides the topology's own key (the end-to-end tests' key)
#   OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_EXPORTER_OTLP_PROTOCOL, OTEL_*  the standard OpenTelemetry variables:
#                            set, they reach every replica as they are (a collector of your own); unset,
#                            the replicas export to the Aspire Dashboard when it runs, and nowhere otherwise

set -euo pipefail

LABMESH_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
STATE=${LABMESH_LOCAL_STATE:-/tmp/labmesh-local}
BASE=${LABMESH_LOCAL_PORT_BASE:-7100}
CONFIGURATION=${LABMESH_LOCAL_CONFIGURATION:-Release}

GATEWAY_PORT=$BASE
GATEWAY_REST_PORT=$((BASE + 1))
POSTGRES_PORT=$((BASE + 54))
REDIS_PORT=$((BASE + 79))
DASHBOARD_UI_PORT=$((BASE + 90))
DASHBOARD_OTLP_GRPC_PORT=$((BASE + 91))
DASHBOARD_OTLP_HTTP_PORT=$((BASE + 92))
# Seconds a stopping gateway gives open calls and streams before it closes them (its shutdownTimeoutSeconds).
GATEWAY_SHUTDOWN_TIMEOUT=${LABMESH_LOCAL_GATEWAY_SHUTDOWN_TIMEOUT:-5}
POSTGRES_PASSWORD=labmesh-local-only
REDIS_PASSWORD=labmesh-local-only

# The four services: name, project, the gRPC service its health check names, the first replica's port offset.
SERVICES=(requisition servicerequest resultsinterpretation notification)
declare -A PROJECT=(
  [requisition]=LabMesh.Requisition
  [servicerequest]=LabMesh.ServiceRequest
  [resultsinterpretation]=LabMesh.ResultsInterpretation
  [notification]=LabMesh.Notification
)
# The gateway's project too (it is no service: not in SERVICES, no replicas), so that publish_aot and aot_executable take it.
PROJECT[gateway]=LabMesh.Gateway
declare -A OFFSET=([requisition]=11 [servicerequest]=21 [resultsinterpretation]=31 [notification]=41)
REPLICAS=(1 2)

# The services whose replicas run as Native AOT executables unless LABMESH_LOCAL_AOT says otherwise (set and empty:
# none): every service, since each one's code and packages run under Native AOT (their READMEs, "Native AOT").
AOT_DEFAULT="servicerequest requisition resultsinterpretation notification"
IFS=', ' read -r -a AOT_SERVICES <<< "${LABMESH_LOCAL_AOT-$AOT_DEFAULT}"
for aot_service in "${AOT_SERVICES[@]}"; do
  [ -n "${OFFSET[$aot_service]:-}" ] || { echo "labmesh-local: LABMESH_LOCAL_AOT names '$aot_service', not one of: ${SERVICES[*]}" >&2; exit 1; }
done
unset aot_service
AOT_DIR=${LABMESH_LOCAL_AOT_DIR:-$LABMESH_ROOT/artifacts/aot}

# replica_port requisition 2 -> BASE+12
replica_port() { echo $((BASE + ${OFFSET[$1]} + $2 - 1)); }
# REST (JSON over HTTP/1.1, LabMesh:Rest:Url): rest_port requisition 2 -> BASE+16
rest_port() { echo $(($(replica_port "$1" "$2") + 4)); }

# ipv4:127.0.0.1:P1,127.0.0.1:P2: every replica of a service, as its peers are told to reach it.
service_target() {
  local list=() r
  for r in "${REPLICAS[@]}"; do list+=("127.0.0.1:$(replica_port "$1" "$r")"); done
  local IFS=,
  echo "ipv4:${list[*]}"
}

service_dll() { echo "$LABMESH_ROOT/services/${PROJECT[$1]}/bin/$CONFIGURATION/net10.0/${PROJECT[$1]}.dll"; }

# --- Native AOT (LABMESH_LOCAL_AOT): a service's native executable, published into a directory of its own.

is_aot() { [[ " ${AOT_SERVICES[*]} " == *" $1 "* ]]; }
aot_executable() { echo "$AOT_DIR/$CONFIGURATION/${PROJECT[$1]}/${PROJECT[$1]}"; }

# The command a replica of the service runs: its native executable, or dotnet and its assembly.
service_command() {
  if is_aot "$1"; then aot_executable "$1"; else echo dotnet; service_dll "$1"; fi
}

# The first file its build reads that is newer than the service's executable (nothing when it is current): the
# service's project, the shared libraries and contracts, and the build settings at the root and in services/
# (not the Dockerfiles and READMEs beside them).
aot_stale_source() {
  local exe
  exe=$(aot_executable "$1")
  [ -x "$exe" ] || { echo "$exe"; return 0; }
  find "$LABMESH_ROOT/services/${PROJECT[$1]}" "$LABMESH_ROOT/src" "$LABMESH_ROOT/protos" "$LABMESH_ROOT/third_party" \
    "$LABMESH_ROOT/global.json" "$LABMESH_ROOT/Directory.Build.props" "$LABMESH_ROOT/Directory.Packages.props" \
    "$LABMESH_ROOT/.editorconfig" "$LABMESH_ROOT/services/Directory.Build.props" \
    \( -name bin -o -name obj \) -prune -o -type f ! -name Dockerfile ! -name '*.md' -newer "$exe" -print -quit
}

# Publishes the service as a Native AOT executable unless it is current. The C toolchain links it (gcc and libc6-dev;
# zlib comes with the runtime pack; tools/test.sh installs them). Intermediate files go under AOT_DIR/build (--artifacts-path), never
# into the project's obj/, so a publish does not rewrite what dotnet build and the tests use. One publish at a time
# (flock): topologies started side by side share the executable.
publish_aot() {
  local service=$1 project=${PROJECT[$1]} stale started=$SECONDS since lock reason
  mkdir -p "$AOT_DIR"
  exec {lock}>"$AOT_DIR/publish.lock"
  flock "$lock"
  stale=$(aot_stale_source "$service")
  if [ -n "$stale" ]; then
    since=$(date +%s)
    reason="${stale#"$LABMESH_ROOT/"} is newer"
    [ "$stale" != "$(aot_executable "$service")" ] || reason="not published yet"
    say "publishing $project as a Native AOT executable ($CONFIGURATION, linux-x64; $reason)"
    # Trim and AOT analysis warnings stay warnings (in the log): packages LabMesh uses give some of their own (IL2104 and
    # IL3053 from Microsoft.AspNetCore.Grpc.JsonTranscoding and Grpc.AspNetCore.Server.Reflection), which the
    # repository's TreatWarningsAsErrors would turn into a failed publish; the end-to-end tests check what runs.
    dotnet publish "$LABMESH_ROOT/services/$project" -c "$CONFIGURATION" -r linux-x64 -p:PublishAot=true -p:TreatWarningsAsErrors=false \
      --artifacts-path "$AOT_DIR/build" -o "$AOT_DIR/$CONFIGURATION/$project" -v q -nologo >"$AOT_DIR/$project.publish.log" 2>&1 \
      || { exec {lock}>&-; tail -n 30 "$AOT_DIR/$project.publish.log" >&2; die "publishing $project as Native AOT failed (log above: $AOT_DIR/$project.publish.log)"; }
    # The executable's time is the link's; touched so that a source edited during the publish counts as newer next time.
    touch -d "@$since" "$(aot_executable "$service")"
    say "published $(aot_executable "$service") in $((SECONDS - started))s"
  fi
  exec {lock}>&-
}

cli_dll() { echo "$LABMESH_ROOT/tools/LabMesh.Cli/bin/$CONFIGURATION/net10.0/labmesh.dll"; }

postgres_bin() {
  local dir
  dir=$(compgen -G "/usr/lib/postgresql/*/bin" | sort -V | tail -n 1 || true)
  [ -n "$dir" ] || { echo "PostgreSQL is not installed (apt-get install -y postgresql)" >&2; return 1; }
  echo "$dir"
}

# PostgreSQL refuses to run as root: as root its tools run as the postgres user.
as_postgres() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

postgres_connection() {
  echo "Host=127.0.0.1;Port=$POSTGRES_PORT;Username=labmesh;Password=$POSTGRES_PASSWORD;Database=labmesh"
}

redis_connection() { echo "127.0.0.1:$REDIS_PORT,password=$REDIS_PASSWORD"; }

pid_file() { echo "$STATE/run/$1.pid"; }

# --- Token keys (SECURITY.md): one EC P-256 key for the whole topology, made on first start and kept in the
# state directory. Every replica signs its service tokens with it and trusts it; the labmesh command signs
# its tokens with the same key through LABMESH_DEV_KEY (the key file in the all-in-one host's format).

KEY_ID=labmesh-local
key_pem() { echo "$STATE/keys/signing-key.pem"; }
key_file() { echo "$STATE/keys/labmesh-local-key.json"; }

ensure_keys() {
  [ -f "$(key_file)" ] && return 0
  mkdir -p "$STATE/keys"
  chmod 700 "$STATE/keys"
  (umask 077 && openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$(key_pem)" 2>/dev/null) \
    || die "openssl could not make the signing key"
  local escaped
  escaped=$(awk '{printf "%s\\n", $0}' "$(key_pem)")
  (umask 077 && printf '{"kid":"%s","issuer":"labmesh","audience":"labmesh","private_key_pem":"%s"}\n' "$KEY_ID" "$escaped" > "$(key_file)")
  say "made the topology's signing key ($(key_pem))"
}

# The pid in NAME's pid file if that process is alive.
running_pid() {
  local file pid
  file=$(pid_file "$1")
  [ -f "$file" ] || return 1
  pid=$(cat "$file")
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && echo "$pid"
}

say() { printf 'labmesh-local: %s\n' "$*"; }
die() { printf 'labmesh-local: %s\n' "$*" >&2; exit 1; }

# Waits up to $2 seconds for the command in $3... to succeed; $1 names what is awaited.
wait_for() {
  local what=$1 seconds=$2
  shift 2
  local deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || { echo "labmesh-local: $what did not come up within ${seconds}s" >&2; return 1; }
    sleep 0.2
  done
}

# --- PostgreSQL: one cluster, database labmesh owned by role labmesh (each service keeps its own tables).

start_postgres() {
  local bin data=$STATE/postgres/data
  bin=$(postgres_bin)
  mkdir -p "$STATE/postgres"
  [ "$(id -u)" = 0 ] && chown postgres:postgres "$STATE/postgres"
  if [ ! -f "$data/PG_VERSION" ]; then
    say "creating the PostgreSQL cluster in $data"
    printf '%s\n' "$POSTGRES_PASSWORD" > "$STATE/postgres/pwfile"
    [ "$(id -u)" = 0 ] && chown postgres:postgres "$STATE/postgres/pwfile"
    # Password (SCRAM) over TCP, as the services connect; the scripts use the socket in the state directory.
    as_postgres "$bin/initdb" -D "$data" -U postgres --pwfile="$STATE/postgres/pwfile" --auth-host=scram-sha-256 \
      --auth-local=trust -E UTF8 --locale=C >/dev/null
    rm -f "$STATE/postgres/pwfile"
    cat >> "$data/postgresql.conf" <<CONF
port = $POSTGRES_PORT
listen_addresses = '127.0.0.1'
unix_socket_directories = '$STATE/postgres'
max_connections = 200
CONF
    as_postgres "$bin/pg_ctl" -D "$data" -l "$STATE/postgres/postgres.log" -w -t 60 start >/dev/null
    as_postgres "$bin/psql" -q -h "$STATE/postgres" -p "$POSTGRES_PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 \
      -c "CREATE ROLE labmesh LOGIN PASSWORD '$POSTGRES_PASSWORD'" -c "CREATE DATABASE labmesh OWNER labmesh" >/dev/null
  elif ! postgres_ready; then
    as_postgres "$bin/pg_ctl" -D "$data" -l "$STATE/postgres/postgres.log" -w -t 60 start >/dev/null
  fi
  say "PostgreSQL on 127.0.0.1:$POSTGRES_PORT (database labmesh)"
}

postgres_ready() { "$(postgres_bin)/pg_isready" -q -h 127.0.0.1 -p "$POSTGRES_PORT" -d labmesh; }

stop_postgres() {
  local data=$STATE/postgres/data
  [ -f "$data/postmaster.pid" ] || return 0
  as_postgres "$(postgres_bin)/pg_ctl" -D "$data" -m fast -w -t 60 stop >/dev/null 2>&1 || true
  say "PostgreSQL stopped"
}

# SIGKILL of the postmaster, to play a crash: its backends exit when they notice, and start_postgres recovers from the WAL.
kill_postgres() {
  local data=$STATE/postgres/data pid
  [ -f "$data/postmaster.pid" ] || return 0
  pid=$(head -n 1 "$data/postmaster.pid")
  kill -KILL "$pid" 2>/dev/null || true
  wait_for "PostgreSQL's postmaster to exit" 15 bash -c "! kill -0 $pid"
  say "PostgreSQL killed"
}

# --- Redis: append-only with fsync on every write, so a crash or restart keeps every event on the streams.

start_redis() {
  if running_pid redis >/dev/null; then return 0; fi
  mkdir -p "$STATE/redis"
  redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --requirepass "$REDIS_PASSWORD" \
    --appendonly yes --appendfsync always --save "" --dir "$STATE/redis" \
    --daemonize yes --pidfile "$(pid_file redis)" --logfile "$STATE/logs/redis.log"
  wait_for "Redis" 15 redis_ready
  say "Redis on 127.0.0.1:$REDIS_PORT"
}

redis_ready() { redis-cli --no-auth-warning -a "$REDIS_PASSWORD" -p "$REDIS_PORT" ping | grep -q PONG; }

# stop_redis [kill]: SHUTDOWN (the AOF is already on disk), or SIGKILL to play a crash.
stop_redis() {
  local pid
  pid=$(running_pid redis) || return 0
  if [ "${1:-}" = kill ]; then
    kill -KILL "$pid"
  else
    redis-cli --no-auth-warning -a "$REDIS_PASSWORD" -p "$REDIS_PORT" shutdown >/dev/null 2>&1 || kill -TERM "$pid"
  fi
  wait_for "Redis to exit" 15 bash -c "! kill -0 $pid"
  rm -f "$(pid_file redis)"
  say "Redis stopped${1:+ ($1)}"
}

# --- The services: each replica a process of its own on its own port, configured as in Kubernetes
# (ConnectionStrings:*, LabMesh:Services:* naming every replica of a peer, balanced round-robin).

start_replica() {
  local service=$1 replica=$2 name="$1-$2" port command
  if running_pid "$name" >/dev/null; then return 0; fi
  port=$(replica_port "$service" "$replica")
  mapfile -t command < <(service_command "$service")
  if is_aot "$service"; then
    [ -x "${command[0]}" ] || die "${command[0]} is missing: up.sh publishes it (LABMESH_LOCAL_AOT names $service)"
  else
    [ -f "${command[1]}" ] || die "${command[1]} is missing: build first (dotnet build -c $CONFIGURATION) or drop LABMESH_LOCAL_NO_BUILD"
  fi
  mkdir -p "$STATE/$name"
  (
    cd "$STATE/$name"
    export ASPNETCORE_ENVIRONMENT=Production DOTNET_ENVIRONMENT=Production
    export ConnectionStrings__Postgres ConnectionStrings__Redis LabMesh__Services__ServiceRequest LabMesh__Services__Requisition
    ConnectionStrings__Postgres=$(postgres_connection)
    ConnectionStrings__Redis=$(redis_connection)
    LabMesh__Services__ServiceRequest=$(service_target servicerequest)
    LabMesh__Services__Requisition=$(service_target requisition)
    # A restarted Notification replica takes back the stream entries it had claimed before.
    export LabMesh__Notification__ConsumerName=$name
    export LabMesh__Security__SigningKeyId=$KEY_ID
    LabMesh__Security__SigningKeyPem=$(cat "$(key_pem)")
    export LabMesh__Security__SigningKeyPem
    # OpenTelemetry (issue 21), with the standard variables only: the replica's service name and instance
    # (its name, e.g. notification-2, so a trace says which replica did what) and where to export. An
    # OTEL_EXPORTER_OTLP_ENDPOINT of the caller's wins; otherwise the Aspire Dashboard's OTLP/gRPC endpoint when
    # it runs (ctl.sh start dashboard, up.sh --dashboard); otherwise nothing is exported.
    export OTEL_SERVICE_NAME=$service
    export OTEL_RESOURCE_ATTRIBUTES="service.instance.id=$name${OTEL_RESOURCE_ATTRIBUTES:+,$OTEL_RESOURCE_ATTRIBUTES}"
    if [ -z "${OTEL_EXPORTER_OTLP_ENDPOINT:-}" ] && running_pid dashboard >/dev/null; then
      export OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:$DASHBOARD_OTLP_GRPC_PORT OTEL_EXPORTER_OTLP_PROTOCOL=grpc
    fi
    if [ -n "${LABMESH_LOCAL_TRUST_KEY_ID:-}" ]; then
      export LabMesh__Security__Keys__0__Id=$LABMESH_LOCAL_TRUST_KEY_ID
      export LabMesh__Security__Keys__0__PublicKeyPem=${LABMESH_LOCAL_TRUST_KEY_PEM:?LABMESH_LOCAL_TRUST_KEY_PEM goes with LABMESH_LOCAL_TRUST_KEY_ID}
    fi
    # The pid file holds the replica's own process: exec keeps the pid, whether it is dotnet or the native executable.
    exec setsid "${command[@]}" --urls "http://127.0.0.1:$port" --LabMesh:Rest:Url "http://127.0.0.1:$(rest_port "$service" "$replica")" \
      >>"$STATE/logs/$name.log" 2>&1 </dev/null
  ) &
  echo $! > "$(pid_file "$name")"
}

replica_healthy() {
  dotnet "$(cli_dll)" health --target "http://127.0.0.1:$(replica_port "$1" "$2")" --service "$1" --json --timeout 2s
}

wait_replica() {
  local name="$1-$2" pid
  local deadline=$((SECONDS + 90))
  until replica_healthy "$1" "$2" >/dev/null 2>&1; do
    pid=$(running_pid "$name") || { tail -n 30 "$STATE/logs/$name.log" >&2; die "$name exited while starting (log above: $STATE/logs/$name.log)"; }
    [ $SECONDS -lt $deadline ] || die "$name (pid $pid) is not SERVING after 90s; see $STATE/logs/$name.log"
    sleep 0.5
  done
  say "$name SERVING on 127.0.0.1:$(replica_port "$1" "$2")"
}

# stop_replica NAME [kill]: SIGTERM and a graceful drain (SIGKILL after 30s), or SIGKILL at once (a crash).
stop_replica() {
  local name=$1 pid
  pid=$(running_pid "$name") || { rm -f "$(pid_file "$name")"; return 0; }
  local started=$SECONDS how=${2:-}
  if [ "${2:-}" = kill ]; then
    kill -KILL "$pid"
  else
    kill -TERM "$pid"
    local deadline=$((SECONDS + 30))
    while kill -0 "$pid" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.2; done
    if kill -0 "$pid" 2>/dev/null; then
      how="still draining after 30s: killed"
      kill -KILL "$pid" 2>/dev/null || true
    else
      how="drained in $((SECONDS - started))s"
    fi
  fi
  while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
  rm -f "$(pid_file "$name")"
  say "$name stopped${how:+ ($how)}"
}

# --- The gateway: services/LabMesh.Gateway (YARP), h2c on BASE and REST (HTTP/1.1) on BASE+1. Its routes,
# clusters and their settings are its appsettings.json (shared with compose); here it is given the listeners and
# each cluster's destinations: both replicas of a service, each call to the one with fewer calls in flight of the two, each on HTTP/2 connections the gateway
# keeps and multiplexes. A replica that refuses a connection is passed over for 5 s (passive health) and the call
# goes to the other one: only a call that never reached a replica is moved, so no call runs twice.

# It runs as its Native AOT executable, always (services/LabMesh.Gateway/README.md, "Native AOT"): up.sh publishes it.
gateway_executable() { aot_executable gateway; }

start_gateway() {
  if running_pid gateway >/dev/null; then return 0; fi
  local exe service r args=()
  exe=$(gateway_executable)
  [ -x "$exe" ] || die "$exe is missing: up.sh publishes it (Native AOT)"
  args+=(--Kestrel:Endpoints:Grpc:Url "http://127.0.0.1:$GATEWAY_PORT" --Kestrel:Endpoints:Rest:Url "http://127.0.0.1:$GATEWAY_REST_PORT")
  # A stop lets open calls and streams (Subscribe never ends by itself) run this long, then closes them.
  args+=(--shutdownTimeoutSeconds "$GATEWAY_SHUTDOWN_TIMEOUT")
  for service in "${SERVICES[@]}"; do
    for r in "${REPLICAS[@]}"; do
      args+=(--ReverseProxy:Clusters:$service:Destinations:$service-$r:Address "http://127.0.0.1:$(replica_port "$service" "$r")")
      args+=(--ReverseProxy:Clusters:$service-rest:Destinations:$service-$r:Address "http://127.0.0.1:$(rest_port "$service" "$r")")
    done
  done
  mkdir -p "$STATE/gateway"
  (
    cd "$STATE/gateway"
    export ASPNETCORE_ENVIRONMENT=Production DOTNET_ENVIRONMENT=Production
    exec setsid "$exe" "${args[@]}" >>"$STATE/logs/gateway.log" 2>&1 </dev/null
  ) &
  echo $! > "$(pid_file gateway)"
  # Ready once it has warmed up: it sends health checks through itself to the replicas until 2,000 are answered (about
  # a second: Native AOT has no JIT to settle), 15 s at most (its LabMesh:Gateway:WarmUp), and less when no replica answers.
  local deadline=$((SECONDS + 40)) started=$SECONDS
  until gateway_ready; do
    running_pid gateway >/dev/null || { tail -n 30 "$STATE/logs/gateway.log" >&2; die "the gateway exited while starting (log above: $STATE/logs/gateway.log)"; }
    [ $SECONDS -lt $deadline ] || die "the gateway is not ready after 40s; see $STATE/logs/gateway.log"
    sleep 0.2
  done
  say "gateway (services/LabMesh.Gateway, YARP) on 127.0.0.1:$GATEWAY_PORT (gRPC, h2c) and 127.0.0.1:$GATEWAY_REST_PORT (REST), ready in $((SECONDS - started))s ($(gateway_readiness | tail -n 1))"
}

# Both of the gateway's ports accept connections and its readiness (GET /healthz/ready on the REST port) says 200:
# listening, and warmed up (or its warm-up gave up: no replica answered, or its bound passed).
gateway_ready() {
  gateway_listening && gateway_readiness | head -n 1 | grep -q '^HTTP/1.1 200 '
}

# The gateway's readiness answer: the status line, then the body (what the warm-up did), over bash's /dev/tcp.
gateway_readiness() {
  (
    exec 3<>"/dev/tcp/127.0.0.1/$GATEWAY_REST_PORT" || exit 1
    printf 'GET /healthz/ready HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n' >&3
    timeout 2 cat <&3 | tr -d '\r' | sed -n '1p;/^$/,$p' | sed '/^$/d'
  ) 2>/dev/null
}

# Both of the gateway's ports accept connections.
gateway_listening() {
  (exec 3<>"/dev/tcp/127.0.0.1/$GATEWAY_PORT") 2>/dev/null && (exec 3<>"/dev/tcp/127.0.0.1/$GATEWAY_REST_PORT") 2>/dev/null
}

# stop_gateway: TERM, a graceful stop (no new connections; calls in flight finish). Streams still open after
# GATEWAY_SHUTDOWN_TIMEOUT seconds are closed by the gateway itself (its host's shutdown timeout); should it still
# run 5 s after that, it gets KILL. Says which it took and how many client connections were open.
stop_gateway() {
  local pid open started=$SECONDS how="graceful"
  pid=$(running_pid gateway) || { rm -f "$(pid_file gateway)"; return 0; }
  open=$(gateway_connections)
  kill -TERM "$pid"
  local deadline=$((SECONDS + GATEWAY_SHUTDOWN_TIMEOUT + 5))
  while kill -0 "$pid" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.2; done
  if kill -0 "$pid" 2>/dev/null; then
    how="did not exit within $((GATEWAY_SHUTDOWN_TIMEOUT + 5))s of TERM: KILL"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
  rm -f "$(pid_file gateway)"
  say "gateway stopped in $((SECONDS - started))s ($how; $open client connection(s) were open, streams among them closed after at most ${GATEWAY_SHUTDOWN_TIMEOUT}s)"
}

# Established client connections to the gateway's port (ss from iproute2; "unknown" without it).
gateway_connections() {
  command -v ss >/dev/null || { echo unknown; return 0; }
  ss -Htn state established "( sport = :$GATEWAY_PORT )" 2>/dev/null | wc -l
}

# --- The Aspire Dashboard (tools/Aspire.Dashboard): a viewer for the replicas' traces, metrics and logs, on
# loopback, started only on request. It keeps telemetry in memory; replicas started while it runs export to
# it (start_replica), so it starts before them.

start_dashboard() {
  if running_pid dashboard >/dev/null; then return 0; fi
  local script=$LABMESH_ROOT/tools/Aspire.Dashboard/dashboard.sh
  # Fetches the package on first use (about 125 MB from the NuGet feed), so a failure here says so.
  "$script" path >/dev/null || die "the Aspire Dashboard could not be fetched (see above; tools/Aspire.Dashboard/dashboard.sh path)"
  mkdir -p "$STATE/dashboard"
  (
    export LABMESH_DASHBOARD_UI_PORT=$DASHBOARD_UI_PORT LABMESH_DASHBOARD_OTLP_GRPC_PORT=$DASHBOARD_OTLP_GRPC_PORT \
      LABMESH_DASHBOARD_OTLP_HTTP_PORT=$DASHBOARD_OTLP_HTTP_PORT LABMESH_DASHBOARD_STATE=$STATE/dashboard
    exec setsid "$script" run >>"$STATE/logs/dashboard.log" 2>&1 </dev/null
  ) &
  echo $! > "$(pid_file dashboard)"
  local deadline=$((SECONDS + 60))
  until dashboard_ready; do
    running_pid dashboard >/dev/null || { tail -n 30 "$STATE/logs/dashboard.log" >&2; die "the Aspire Dashboard exited while starting (log above)"; }
    [ $SECONDS -lt $deadline ] || die "the Aspire Dashboard is not answering after 60s; see $STATE/logs/dashboard.log"
    sleep 0.2
  done
  say "Aspire Dashboard: UI http://127.0.0.1:$DASHBOARD_UI_PORT, OTLP/gRPC http://127.0.0.1:$DASHBOARD_OTLP_GRPC_PORT, OTLP/HTTP http://127.0.0.1:$DASHBOARD_OTLP_HTTP_PORT"
}

# Ready when the UI answers, the OTLP/HTTP endpoint accepts an (empty) trace export and the OTLP/gRPC port is open.
dashboard_ready() {
  curl -sf -o /dev/null --max-time 2 "http://127.0.0.1:$DASHBOARD_UI_PORT/" \
    && curl -sf -o /dev/null --max-time 2 -H 'content-type: application/x-protobuf' --data-binary '' \
      "http://127.0.0.1:$DASHBOARD_OTLP_HTTP_PORT/v1/traces" \
    && (exec 3<>"/dev/tcp/127.0.0.1/$DASHBOARD_OTLP_GRPC_PORT") 2>/dev/null
}

stop_dashboard() {
  local pid
  pid=$(running_pid dashboard) || { rm -f "$(pid_file dashboard)"; return 0; }
  kill -TERM "$pid"
  local deadline=$((SECONDS + 15))
  while kill -0 "$pid" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.2; done
  kill -KILL "$pid" 2>/dev/null || true
  rm -f "$(pid_file dashboard)"
  say "Aspire Dashboard stopped"
}
