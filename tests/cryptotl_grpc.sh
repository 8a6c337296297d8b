#!/usr/bin/env bash
# CryptoTL over the network transport: `hetal server serve --cryptotl-model` on loopback with
# mutual TLS (128-bit C14 keys, Reuters grain -> corn). The client encrypts into its bundle,
# `hetal cryptotl send` uploads, has the service run its lower network and downloads the
# outputs; the client's upper layers then equal those trained on the directory transport's
# outputs (same inputs, same seed, predictions identical). A second send reuses every uploaded
# object. Refused: another tenant asking for tenant-a's forward job (NOT_FOUND), a service
# without a model (mutual TLS itself is tested by grpc_service.sh and test_grpc). The
# service's own DP flag noises every output.
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
work=$1
rm -rf "$work" && mkdir -p "$work"
cd "$work"
fail() { echo "FAIL: $*" >&2; tail -20 serve.log >&2 || true; exit 1; }
server_pid=
cleanup() { [[ -n $server_pid ]] && kill -9 "$server_pid" 2>/dev/null || true; }
trap cleanup EXIT
start_server() {
  rm -f port
  "$HETAL" server serve --listen 127.0.0.1:0 --data srv --ca certs/ca.crt --cert certs/server.crt \
    --key certs/server.key --port-file port "$@" >>serve.log 2>&1 &
  server_pid=$!
  for _ in $(seq 100); do [[ -s port ]] && break; sleep 0.1; done
  [[ -s port ]] || fail "the server did not start"
  port=$(cat port)
}
stop_server() { kill "$server_pid"; wait "$server_pid" || true; server_pid=; }
tls() { echo "--server 127.0.0.1:$port --ca certs/ca.crt --cert certs/$1.crt --key certs/$1.key"; }

"$src/scripts/make_certs.sh" certs >/dev/null
"$HETAL" cryptotl server-train --dataset reuters-grain --out model.tln --epochs 20 --seed 1 >/dev/null
for s in train test; do
  "$HETAL" cryptotl encrypt --dataset reuters-corn --split $s --client client --bundle bundle >/dev/null
done
cp -r bundle files
"$HETAL" cryptotl forward --model model.tln --bundle files >/dev/null   # the directory transport

start_server --cryptotl-model model.tln
"$HETAL" cryptotl send --bundle bundle $(tls tenant-a) | tee send.txt
grep -q "samples/s" send.txt || fail "send printed no throughput"
for b in bundle files; do
  "$HETAL" cryptotl client-train --client client --bundle $b --out $b.pt --seed 5 --epochs 30 >/dev/null
  "$HETAL" cryptotl predict --client client --bundle $b --model $b.pt --split test --out $b.csv >/dev/null
done
cmp -s bundle.csv files.csv || fail "the network transport's outputs gave other predictions"
"$HETAL" cryptotl send --bundle bundle $(tls tenant-a) >/dev/null  # objects are there already
grep -q '"job_id"' bundle/result.json || fail "result.json lacks the job id"

# tenant-b cannot see tenant-a's forward job (Read looks jobs up the same way: test_grpc.cpp)
job=$(sed -n 's/.*"job_id": "\([0-9a-f]*\)".*/\1/p' bundle/result.json)
[[ ${#job} == 32 ]] || fail "no job id in result.json"
mkdir -p x && echo "$job" >x/job.txt
if "$HETAL" client status --client x $(tls tenant-b) >out.txt 2>err.txt; then
  fail "tenant-b sees tenant-a's job"
fi
grep -q "no such job" err.txt || fail "tenant-b: $(cat err.txt)"
"$HETAL" client status --client x $(tls tenant-a) >status.txt
grep -q DONE status.txt || fail "tenant-a's forward job is not DONE: $(cat status.txt)"
stop_server

start_server  # no model
if "$HETAL" cryptotl send --bundle bundle $(tls tenant-a) >out.txt 2>err.txt; then fail "forward without a model"; fi
grep -q "no CryptoTL model" err.txt || fail "no-model message: $(cat err.txt)"
stop_server

start_server --cryptotl-model model.tln --cryptotl-dp-epsilon 10 --cryptotl-dp-input-radius 1
"$HETAL" cryptotl send --bundle bundle $(tls tenant-a) >dp.txt
grep -q "epsilon 10" dp.txt || fail "the service's DP is not reported"
cmp -s files/outputs-test.cts bundle/outputs-test.cts && fail "the service's DP noise changed nothing"
grep -q '"sigma"' bundle/result.json || fail "result.json lacks the DP record"
stop_server
echo "cryptotl_grpc: all checks passed"
