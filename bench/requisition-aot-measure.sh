#!/bin/bash
# requisition-aot-measure.sh: Requisition's Native AOT executable and its JIT build (dotnet LabMesh.Requisition.dll, Release) side by side,
# started the same way (Development, SQLite, each its own data directory holding the same development key), with one
# ServiceRequest peer (main's Native AOT executable); RSS 30 s after start, CPU per call over the same bounded load
# (alternated AOT/JIT three times), RSS 30 s after.
# Usage (from the repository root, after the publish and `dotnet build -c Release` of the section "Requisition as a Native AOT executable"):
#   AOT=artifacts/aot/Release/LabMesh.Requisition/LabMesh.Requisition JIT=services/LabMesh.Requisition/bin/Release/net10.0/LabMesh.Requisition.dll \
#   SR=artifacts/aot/Release/LabMesh.ServiceRequest/LabMesh.ServiceRequest CLI=tools/LabMesh.Cli/bin/Release/net10.0/labmesh.dll CALLS=30000 bash bench/requisition-aot-measure.sh
set -u
AOT=$(realpath "$AOT") JIT=$(realpath "$JIT") SR=$(realpath "$SR") CLI=$(realpath "$CLI")
M=${M:-/tmp/labmesh-requisition-aot}; mkdir -p "$M"; cd "$M"; rm -rf aot jit sr ./*.log
st() { awk '/^(VmRSS|RssAnon|RssFile|RssShmem)/{printf "%s %.1f  ", $1, $2/1024}' /proc/$1/status; echo; }
cpu() { awk '{print $14+$15}' /proc/$1/stat; }
start() { # name port cmd...
  local name=$1 port=$2; shift 2
  mkdir -p $M/$name/data; cp $M/sr/data/dev-signing-key.json $M/$name/data/ 2>/dev/null
  (cd $M/$name && ASPNETCORE_ENVIRONMENT=Development DOTNET_ENVIRONMENT=Development LabMesh__Services__ServiceRequest=http://127.0.0.1:55721 \
     LabMesh__Limits__PermitsPerSecond=1000000 LabMesh__Limits__Burst=1000000 \
     exec setsid "$@" --urls "http://127.0.0.1:$port" --LabMesh:Rest:Url "http://127.0.0.1:$((port+1))" >>$M/$name.log 2>&1 </dev/null) &
}
start sr 55721 $SR
for i in $(seq 60); do [ -f $M/sr/data/dev-signing-key.json ] && break; sleep 0.5; done
start aot 55731 $AOT
start jit 55741 dotnet $JIT
sleep 3
S=$(pgrep -f "LabMesh.ServiceRequest --urls http://127.0.0.1:55721"); A=$(pgrep -f "LabMesh.Requisition --urls http://127.0.0.1:55731"); J=$(pgrep -f "LabMesh.Requisition.dll --urls http://127.0.0.1:55741")
echo "sr $S aot $A jit $J  $(date -u +%T)"; echo "$S $A $J" > $M/pids
export LABMESH_DEV_KEY=$M/sr/data/dev-signing-key.json
TOK=$(dotnet $CLI token --role clinician --team bench 2>/dev/null)
# One placed requisition per build (through its own API), then GetRequisitionStatus of it as the load.
for who in aot:55731 jit:55741; do
  IFS=: read name port <<<"$who"
  id=$(curl -s -X POST -H "authorization: Bearer $TOK" -H "content-type: application/json" http://127.0.0.1:$((port+1))/v1/requisitions -d '{"requestId":"'$name-$RANDOM'","patient":{"id":"patient-1","givenName":"Ada","familyName":"Lovelace","birthDate":"1985-12-10","sex":"female"},"orderingProvider":{"id":"dr-1","name":"Dr. Grace Hopper","npi":"1234567890"},"lab":"LabCorp","modality":"TEST_MODALITY_TESTKIT","tests":[{"code":"LIPID_PANEL","description":"test 0","partnerId":"partner-a"}],"place":true}' | tee -a $M/create.log | python3 -c 'import json,sys; print(json.load(sys.stdin)["requisition"]["id"])')
  echo "$name requisition $id"
  python3 - "$id" > $M/$name.get.bin <<'PY'
import sys
i=sys.argv[1].encode(); msg=b'\x0a'+bytes([len(i)])+i
sys.stdout.buffer.write(b'\x00'+len(msg).to_bytes(4,'big')+msg)
PY
done
sleep 25
echo "30 s after start:"; echo -n "aot "; st $A; echo -n "jit "; st $J
for who in aot:$A:55731 jit:$J:55741 aot:$A:55731 jit:$J:55741 aot:$A:55731 jit:$J:55741; do
  IFS=: read name pid port <<<"$who"
  before=$(cpu $pid)
  h2load -n ${CALLS:-5000} -c 4 -m 8 -H "content-type: application/grpc" -H "te: trailers" -H "authorization: Bearer $TOK" -d $M/$name.get.bin \
    http://127.0.0.1:$port/labmesh.requisition.v1.RequisitionService/GetRequisitionStatus 2>&1 | grep -E "^finished|^requests:" | sed "s/^/$name /"
  after=$(cpu $pid)
  echo "$name cpu ticks (1/100 s) $((after-before)) over ${CALLS:-5000} calls: $(echo "scale=3; ($after-$before)*10000/${CALLS:-5000}" | bc) us/call"
done
for who in aot:55731 jit:55741; do IFS=: read name port <<<"$who"; echo "$name grpc-status of a call after the load: $(curl -s --http2-prior-knowledge -H 'content-type: application/grpc' -H 'te: trailers' -H "authorization: Bearer $TOK" --data-binary @$M/$name.get.bin -D - -o /dev/null http://127.0.0.1:$port/labmesh.requisition.v1.RequisitionService/GetRequisitionStatus | grep -i '^grpc-status:' | tr -d '\r')"; done
sleep 30
echo "30 s after the load:"; echo -n "aot "; st $A; echo -n "jit "; st $J
kill $A $J $S
