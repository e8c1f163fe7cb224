#!/usr/bin/env bash
# Runs every LabMesh test. On a fresh machine it first installs what the tests need from Debian's
# packages (when run as root; otherwise it says what is missing). Servers the tests need (Python
# gRPC peers, later Redis and PostgreSQL) are started by the tests' own fixtures on free loopback
# ports, so nothing here is left running.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the tests use, and a file each one installs (to tell whether it is present).
packages=(
  "python3:/usr/bin/python3"
  "python3-grpcio:/usr/lib/python3/dist-packages/grpc/__init__.py"
  "python3-protobuf:/usr/lib/python3/dist-packages/google/protobuf/__init__.py"
  "protobuf-compiler:/usr/bin/protoc"
  "grpc-proto:/usr/share/grpc-proto/grpc/health/v1/health.proto"
)

missing=()
for entry in "${packages[@]}"; do
  [ -e "${entry#*:}" ] || missing+=("${entry%%:*}")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "test.sh: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "test.sh: missing Debian packages: ${missing[*]} (run as root, or: sudo apt-get install -y ${missing[*]})" >&2
    exit 1
  fi
fi

command -v dotnet >/dev/null || { echo "test.sh: the .NET SDK (see global.json) is not on PATH" >&2; exit 1; }

dotnet test LabMesh.sln -c "${CONFIGURATION:-Release}" --logger "console;verbosity=minimal" "$@"
