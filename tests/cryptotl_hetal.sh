#!/usr/bin/env bash
# The mode that never decrypts (issue 15): HETAL's encrypted head trained by the server on the
# outputs of its own private lower network (CryptoTL's), through the CLI, client and server as
# separate processes over a bundle folder (TB13-INSECURE keys, for time): the server trains its
# network on Reuters grain (libtorch), the client uploads raw GloVe features of Reuters corn,
# the server runs its network under encryption on every batch and trains the head on its
# outputs, the client answers each epoch and runs encrypted inference on the test split; the
# errors a user hits (a server without the network or with another one, plain prediction); then
# the same over the network service (`hetal server serve --cryptotl-model`, mutual TLS): its
# head equals the directory transport's on the same data.
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
work=$1
rm -rf "$work" && mkdir -p "$work"
cd "$work"
source "$src/tests/cli_checks.sh"
H=("$HETAL" --insecure)
server_pid=
cleanup() { [[ -n $server_pid ]] && kill -9 "$server_pid" 2>/dev/null || true; }
trap cleanup EXIT

"$HETAL" cryptotl server-train --dataset fine-foods --out lower.tln --epochs 30 --seed 1 >log.txt
for s in train test; do
  "$HETAL" client extract --text-dataset fine-foods --split $s --out ff-$s >>log.txt 2>&1
done
"${H[@]}" client keygen --preset TB13-INSECURE --server-network --features ff-train \
  --epochs 2 --patience 0 --lr 1 --client c --bundle b | tee keygen.txt
# 4096 slots, 128 per 100-dimensional sample: a batch is one ciphertext of 32 samples
grep -q "keys for 100 features, 2 classes, batch 32" keygen.txt || fail "keygen: $(cat keygen.txt)"
"${H[@]}" client encrypt --features ff-train --limit 256 --client c --bundle b >>log.txt

"${H[@]}" server train --bundle b --lower-network lower.tln >server.txt 2>&1 &
spid=$!
"${H[@]}" client watch --client c --bundle b | tee watch.txt
wait $spid || fail "server train: $(cat server.txt)"
grep -q "best epoch" watch.txt || fail "watch: $(cat watch.txt)"
"${H[@]}" server infer --bundle b --lower-network lower.tln >infer.txt 2>&1 &
ipid=$!
"${H[@]}" client predict --encrypted --features ff-test --client c --bundle b | tee pred.txt
wait $ipid || fail "server infer: $(cat infer.txt)"
acc=$(sed -n 's/^encrypted-inference accuracy on [0-9]* rows: \([0-9.]*\)$/\1/p' pred.txt)
[[ -n $acc ]] || fail "no accuracy printed: $(cat pred.txt)"
echo "encrypted-inference accuracy $acc"
awk -v a="$acc" 'BEGIN { exit !(a > 0.70) }' || fail "encrypted-inference accuracy $acc"
# (after the run: a failed server leaves its error file for the client to see)
refused "this server has none" "${H[@]}" server train --bundle b
"$HETAL" cryptotl server-train --dataset spam-a --out spam.tln --epochs 5 >/dev/null
refused "takes 57 features, the job's data has 100" "${H[@]}" server train --bundle b --lower-network spam.tln
refused "predict with --encrypted" "${H[@]}" client predict --features ff-test --client c --bundle b

# Over gRPC: a one-epoch job on 128 rows, and its twin over the directory transport.
"$src/scripts/make_certs.sh" certs >/dev/null
"${H[@]}" server serve --listen 127.0.0.1:0 --data srv --ca certs/ca.crt --cert certs/server.crt \
  --key certs/server.key --port-file port --heartbeat 1 --cryptotl-model lower.tln >serve.log 2>&1 &
server_pid=$!
for _ in $(seq 100); do [[ -s port ]] && break; sleep 0.1; done
[[ -s port ]] || fail "the server did not start"
tls=(--server 127.0.0.1:"$(cat port)" --ca certs/ca.crt --cert certs/tenant-a.crt --key certs/tenant-a.key)
small=(--preset TB13-INSECURE --server-network --features ff-train --epochs 1 --patience 0 --lr 1)
"${H[@]}" client keygen "${small[@]}" --client g "${tls[@]}" >/dev/null
"${H[@]}" client encrypt --features ff-train --limit 128 --client g "${tls[@]}" >/dev/null 2>&1
"${H[@]}" client watch --client g "${tls[@]}" >gwatch.txt 2>&1 || fail "watch over gRPC: $(cat gwatch.txt serve.log)"
"${H[@]}" client decrypt --client g "${tls[@]}" --out g.csv >/dev/null
"${H[@]}" client predict --encrypted --features ff-test --limit 64 --client g "${tls[@]}" 2>/dev/null |
  grep -q "encrypted-inference accuracy on 64 rows" || fail "encrypted predict over gRPC"
kill "$server_pid"
wait "$server_pid" || true
server_pid=
# A service whose Forward outputs get DP noise takes no such jobs (the head and its inference
# would bypass the noise), nor does one without a network.
for case in "bypass:--cryptotl-model lower.tln --cryptotl-dp-epsilon 1" "it has none:"; do
  flags=${case#*:}
  rm -f port
  "${H[@]}" server serve --listen 127.0.0.1:0 --data srv2 --ca certs/ca.crt --cert certs/server.crt \
    --key certs/server.key --port-file port $flags >>serve.log 2>&1 &
  server_pid=$!
  for _ in $(seq 100); do [[ -s port ]] && break; sleep 0.1; done
  [[ -s port ]] || fail "the server did not start"
  tls[1]=127.0.0.1:"$(cat port)"
  refused "${case%%:*}" "${H[@]}" client encrypt --features ff-train --limit 128 --client g "${tls[@]}"
  kill "$server_pid"
  wait "$server_pid" || true
  server_pid=
done
"${H[@]}" client keygen "${small[@]}" --client d --bundle db >/dev/null
"${H[@]}" client encrypt --features ff-train --limit 128 --client d --bundle db >/dev/null 2>&1
"${H[@]}" server train --bundle db --lower-network lower.tln >/dev/null 2>&1 &
spid=$!
"${H[@]}" client watch --client d --bundle db >/dev/null 2>&1
wait $spid || fail "the directory twin's server failed"
"${H[@]}" client decrypt --client d --bundle db --out d.csv >/dev/null
paste -d, <(grep -v '^#' d.csv | tr ',' '\n') <(grep -v '^#' g.csv | tr ',' '\n') |
  awk -F, '{ d = $1 - $2; if (d < 0) d = -d; if (d > m) m = d; n++ } END { print "heads over gRPC and files: " n " weights, max |diff| " m; exit !(n == 198 && m < 1e-3) }' ||
  fail "the head trained over gRPC differs from the directory transport's"
echo "cryptotl hetal: all checks passed"
