#!/usr/bin/env bash
# Runs every LabMesh test. On a fresh machine it first installs what the tests need from Debian's
# packages (when run as root; otherwise it says what is missing). Servers the tests need (Python
# and Node gRPC peers, Redis, a throw-away PostgreSQL cluster, and deploy/local's whole topology behind
# its gateway for the end-to-end tests) are started by the tests' own fixtures on free loopback ports, so
# nothing here is left running. The cross-language tests run `npm ci` in
# tests/LabMesh.CrossLanguage.Tests/node once (it needs the npm registry, or an npm cache that holds the pins).
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the tests use, and a file each one installs (to tell whether it is present).
packages=(
  "python3:/usr/bin/python3"
  "python3-grpcio:/usr/lib/python3/dist-packages/grpc/__init__.py"
  "python3-protobuf:/usr/lib/python3/dist-packages/google/protobuf/__init__.py"
  "protobuf-compiler:/usr/bin/protoc"
  # The Python client's gRPC stubs (protoc's grpc_python plugin) and the well-known types protoc imports.
  "protobuf-compiler-grpc:/usr/bin/grpc_python_plugin"
  "libprotobuf-dev:/usr/include/google/protobuf/timestamp.proto"
  "nodejs:/usr/bin/node"
  "npm:/usr/bin/npm"
  "redis-server:/usr/bin/redis-server"
  "postgresql:/usr/lib/postgresql/*/bin/initdb"
  "kubernetes-client:/usr/bin/kubectl"
  "openssl:/usr/bin/openssl"
  # deploy/local publishes the services LABMESH_LOCAL_AOT names as Native AOT executables (the end-to-end tests run
  # them): the ILCompiler links with gcc (binutils comes with it) against libc6-dev, which gcc only recommends.
  "gcc:/usr/bin/gcc"
  "libc6-dev:/usr/lib/*-linux-gnu/crt1.o"
)
# Packages whose command anywhere on PATH will do: the Node tests look node and npm up on PATH, so a
# Node.js installed another way (nvm, a tarball under /usr/local) serves as well as Debian's.
on_path=(nodejs npm)

present() {
  local package=${1%%:*} file=${1#*:}
  compgen -G "$file" >/dev/null && return 0
  [[ " ${on_path[*]} " == *" $package "* ]] && command -v "${file##*/}" >/dev/null
}

missing=()
for entry in "${packages[@]}"; do
  present "$entry" || missing+=("${entry%%:*}")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "test.sh: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # Packages install their servers (redis-server, postgresql) without starting them: the
    # tests start their own on free ports. policy-rc.d is how Debian lets an installer say so.
    policy=/usr/sbin/policy-rc.d
    if [ ! -e "$policy" ]; then
      printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod +x "$policy"
      trap 'rm -f "$policy"' EXIT
    fi
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    rm -f "$policy"
    trap - EXIT
  else
    echo "test.sh: missing Debian packages: ${missing[*]} (run as root, or: sudo apt-get install -y ${missing[*]})" >&2
    exit 1
  fi
fi

command -v dotnet >/dev/null || { echo "test.sh: the .NET SDK (see global.json) is not on PATH" >&2; exit 1; }

# The Native AOT executables deploy/local runs (the gateway, and the services LABMESH_LOCAL_AOT names) are published
# first, one after the other: their compile takes both cores for minutes, and inside the run it would overlap the
# test projects that dotnet test runs beside the end-to-end ones. up.sh then finds them current and starts them.
LABMESH_LOCAL_CONFIGURATION="${CONFIGURATION:-Release}" bash -c \
  'source deploy/local/lib.sh && for part in gateway "${AOT_SERVICES[@]}"; do publish_aot "$part"; done'

dotnet test LabMesh.sln -c "${CONFIGURATION:-Release}" --logger "console;verbosity=minimal" "$@"
