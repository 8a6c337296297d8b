#!/usr/bin/env bash
# Benchmarks of the gRPC service (issue 14), loopback, mutual TLS, production parameters
# (B16-H192) unless noted:
#   1. upload throughput of a real bundle (keys ~3.2 GB + data) against a plain file copy of the
#      same bytes, and the server's peak RSS while receiving it;
#   2. time from `kill -9` of the server to the job training again (keys and data reloaded);
#   3. the server's peak RSS with 1 and with 8 concurrent jobs (TB13-INSECURE, small jobs).
# Usage: bench/grpc_service.sh [work dir]   (needs ./build/hetal; ~5 minutes on 2 cores)
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
HETAL=${HETAL:-$src/build/hetal}
work=${1:-/tmp/hetal-grpc-bench}
rm -rf "$work" && mkdir -p "$work"
cd "$work"
server_pid=
trap '[[ -n $server_pid ]] && kill -9 $server_pid 2>/dev/null || true' EXIT
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

"$src/scripts/make_certs.sh" certs bench >/dev/null
awk 'BEGIN { srand(5); for (c = 0; c < 3; c++) for (k = 0; k < 20; k++) m[c, k] = rand() - 0.5;
  for (r = 0; r < 2340; r++) { c = r % 3; line = "";
    for (k = 0; k < 20; k++) line = line (k ? "," : "") sprintf("%.6f", m[c, k] + 0.3 * (rand() - 0.5));
    print line > "x.csv"; print c > "y.csv" } }'
start_server() {  # start_server LISTEN
  rm -f port
  "$HETAL" server serve --listen "$1" --data srv --ca certs/ca.crt --cert certs/server.crt \
    --key certs/server.key --port-file port >> serve.log 2>&1 &
  server_pid=$!
  for _ in $(seq 300); do [[ -s port ]] && break; sleep 0.1; done
  port=$(cat port)
}
tls() { echo "--server 127.0.0.1:$port --ca certs/ca.crt --cert certs/bench.crt --key certs/bench.key"; }
peak() { awk '/VmHWM/ { printf "%.2f GB", $2 / 1e6 }' "/proc/$1/status"; }

echo "== 1. upload (B16-H192, 20 features, 3 classes, 2 340 rows: 2 batches of 1024) =="
start_server 127.0.0.1:0
"$HETAL" client keygen --client c $(tls) --feature-count 20 --classes 3 --epochs 2 --patience 0 \
  >/dev/null
"$HETAL" client encrypt --client c --bundle c/outbox --features x.csv --labels y.csv >/dev/null 2>&1
bytes=$(du -cb c/outbox/keys c/outbox/data | tail -1 | cut -f1)
sync
t0=$(now)
mkdir -p copy && cp -r c/outbox/keys c/outbox/data copy/
sync
t1=$(now)
echo "plain file copy (cp + sync): $bytes bytes in $(secs "$t0" "$t1") s"
rm -rf copy
# The upload itself (encrypt --server prints it): keys and data, hashed, chunked, checked.
"$HETAL" client encrypt --client c $(tls) --features x.csv --labels y.csv 2>/dev/null | tail -1
echo "server peak RSS after the upload: $(peak "$server_pid")"

echo "== 2. kill -9 to training again =="
for _ in $(seq 1200); do grep -q "training from step" serve.log && break; sleep 0.5; done
grep "set up in" serve.log | tail -1
kill -9 "$server_pid"
wait "$server_pid" 2>/dev/null || true
t0=$(now)
n0=$(grep -c "training from step" serve.log)
start_server "127.0.0.1:$port"
for _ in $(seq 1200); do (($(grep -c "training from step" serve.log) > n0)) && break; sleep 0.1; done
t1=$(now)
grep "set up in" serve.log | tail -1
echo "kill -9 to training again: $(secs "$t0" "$t1") s (server start, job recovered, keys and data reloaded)"
kill -9 "$server_pid" && wait "$server_pid" 2>/dev/null || true
server_pid=

echo "== 3. server memory, 1 and 8 concurrent jobs (TB13-INSECURE) =="
for n in 1 8; do
  MAX_RUNNING=$n HETAL=$HETAL OMP_WAIT_POLICY=passive bash "$src/tests/grpc_concurrent.sh" \
    "$work/jobs$n" "$n" | tail -1
done
