#!/usr/bin/env bash
# 8 clients of 8 tenants at once against one `hetal server serve` (gRPC, mutual TLS, loopback;
# TB13-INSECURE): each generates its keys, encrypts, uploads and watches a one-epoch job to the
# end, at the same time. None may be lost: every watch ends with its epoch answered, every job
# is DONE, and each client decrypts its own model. Prints the server's peak RSS.
# Usage: [MAX_RUNNING=k] grpc_concurrent.sh WORK [clients]
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
work=$1
n=${2:-8}
rm -rf "$work" && mkdir -p "$work"
cd "$work"
fail() { echo "FAIL: $*" >&2; tail -30 serve.log >&2 || true; exit 1; }
server_pid=
trap '[[ -n $server_pid ]] && kill -9 $server_pid 2>/dev/null || true' EXIT

tenants=()
for i in $(seq "$n"); do tenants+=("client-$i"); done
"$src/scripts/make_certs.sh" certs "${tenants[@]}" >/dev/null
awk 'BEGIN { srand(7); for (c = 0; c < 3; c++) for (k = 0; k < 12; k++) m[c, k] = rand() - 0.5;
  for (r = 0; r < 140; r++) { c = r % 3; line = "";
    for (k = 0; k < 12; k++) line = line (k ? "," : "") sprintf("%.6f", m[c, k] + 0.3 * (rand() - 0.5));
    print line > "x.csv"; print c > "y.csv" } }'
"$HETAL" --insecure server serve --listen 127.0.0.1:0 --data srv --ca certs/ca.crt \
  --cert certs/server.crt --key certs/server.key --port-file port --heartbeat 1 \
  --max-running "${MAX_RUNNING:-2}" > serve.log 2>&1 &
server_pid=$!
for _ in $(seq 100); do [[ -s port ]] && break; sleep 0.1; done
[[ -s port ]] || fail "the server did not start"
port=$(cat port)

client() {  # client NAME: the whole client side of one job
  local t=$1
  local tls="--server 127.0.0.1:$port --ca certs/ca.crt --cert certs/$t.crt --key certs/$t.key"
  "$HETAL" --insecure client keygen --client "$t" $tls --preset TB13-INSECURE --batch 128 \
    --lr 1 --epochs 1 --patience 0 --feature-count 12 --classes 3 >/dev/null &&
    "$HETAL" --insecure client encrypt --client "$t" $tls --features x.csv --labels y.csv \
      >/dev/null 2>&1 &&
    "$HETAL" --insecure client watch --client "$t" $tls --timeout 900 > "$t.watch" 2>"$t.err" &&
    "$HETAL" --insecure client status --client "$t" $tls > "$t.status" &&
    "$HETAL" --insecure client decrypt --client "$t" $tls --out "$t.csv" >/dev/null
}
start=$(date +%s)
pids=()
for t in "${tenants[@]}"; do
  client "$t" &
  pids+=($!)
done
for i in "${!pids[@]}"; do
  wait "${pids[$i]}" || { cat "${tenants[$i]}.err" >&2 || true; fail "${tenants[$i]} failed"; }
done
for t in "${tenants[@]}"; do
  grep -q "best epoch 1" "$t.watch" || fail "$t: no result"
  grep -q "DONE, 1 epochs done" "$t.status" || fail "$t: $(cat "$t.status")"
  [[ $(grep -vc '^#' "$t.csv") == 3 ]] || fail "$t: no model"
done
jobs=$(ls -d srv/tenants/*/jobs/* | wc -l)
[[ $jobs == "$n" ]] || fail "$jobs jobs on the server for $n clients"
kill -0 "$server_pid" || fail "the server died"
peak=$(awk '/VmHWM/ { printf "%.0f MB", $2 / 1024 }' "/proc/$server_pid/status")
echo "$n concurrent clients: all $n jobs done in $(($(date +%s) - start)) s;" \
  "server peak RSS $peak (--max-running ${MAX_RUNNING:-2})"
