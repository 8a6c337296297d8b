#!/usr/bin/env bash
# CryptoTL's roles as separate processes (issue 15), each under /usr/bin/time -v: wall time and
# peak resident memory of server-train, encrypt (keys + train + test), forward (directory
# transport), send (gRPC with mutual TLS on loopback: upload, forward, download), client-train,
# predict; Reuters grain -> Reuters corn, 2158 samples of dimension 100.
# Usage: bench/cryptotl.sh [work folder]   (needs build/hetal)
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
hetal=$src/build/hetal
work=${1:-$(mktemp -d)}
rm -rf "$work" && mkdir -p "$work" && cd "$work"
source "$src/bench/measure.sh"
echo "| step | wall | peak RSS |"
echo "|---|---|---|"
measure server-train "$hetal" cryptotl server-train --dataset reuters-grain --out model.tln
measure encrypt-train "$hetal" cryptotl encrypt --dataset reuters-corn --split train --client me --bundle box
measure encrypt-test "$hetal" cryptotl encrypt --dataset reuters-corn --split test --client me --bundle box
cp -r box net
measure forward "$hetal" cryptotl forward --model model.tln --bundle box
"$src/scripts/make_certs.sh" certs >/dev/null
"$hetal" server serve --listen 127.0.0.1:0 --data srv --ca certs/ca.crt --cert certs/server.crt \
  --key certs/server.key --port-file port --cryptotl-model model.tln 2>serve.log &
pid=$!
for _ in $(seq 100); do [[ -s port ]] && break; sleep 0.1; done
measure send "$hetal" cryptotl send --bundle net --server 127.0.0.1:"$(cat port)" --ca certs/ca.crt \
  --cert certs/tenant-a.crt --key certs/tenant-a.key
kill "$pid"
wait "$pid" || true
measure client-train "$hetal" cryptotl client-train --client me --bundle box --out upper.pt
measure predict "$hetal" cryptotl predict --client me --bundle box --model upper.pt --split test
echo
grep -h "samples/s\|accuracy" forward.out send.out client-train.out predict.out
