#!/usr/bin/env bash
# The mode that never decrypts (issue 15) at 128-bit B16-H192 (N = 2^16), the roles as separate
# processes, each under /usr/bin/time -v (wall time, peak resident memory): the server pre-trains
# its lower network (libtorch) on SOURCE; the client extracts GloVe features of TARGET, makes its
# keys with --server-network (the network's rotations added, a batch = one ciphertext of 256
# samples), uploads the raw features; the server trains HETAL's head on its network's encrypted
# outputs for EPOCHS epochs while the client answers; encrypted inference on the test split; and
# the plain twin (`hetal reference --lower-network`: the same split, batches and simulation
# softmax on the plain network's outputs).
# Usage: bench/cryptotl_hetal.sh [work folder] [source] [target] [epochs] [train rows (0: all)]
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
hetal=$src/build/hetal
work=${1:-$(mktemp -d)}
source_set=${2:-reuters-grain}
target=${3:-fine-foods}
epochs=${4:-1}
limit=${5:-0}
rm -rf "$work" && mkdir -p "$work" && cd "$work"
source "$src/bench/measure.sh"
"$hetal" cryptotl server-train --dataset "$source_set" --out lower.tln --seed 1 >server-train.out
for s in train test; do
  "$hetal" client extract --text-dataset "$target" --split $s --out "$target-$s" >/dev/null 2>&1
done
cfg=(--epochs "$epochs" --patience 0 --lr 1)
echo "| step | wall | peak RSS |"
echo "|---|---|---|"
measure keygen "$hetal" client keygen --server-network --features "$target-train" "${cfg[@]}" \
  --client me --bundle box
measure encrypt "$hetal" client encrypt --features "$target-train" --limit "$limit" --client me \
  --bundle box
measure server-train-head "$hetal" server train --bundle box --lower-network lower.tln >server.row &
pid=$!
measure watch "$hetal" client watch --client me --bundle box
wait "$pid"
cat server.row
measure server-infer "$hetal" server infer --bundle box --lower-network lower.tln >infer.row &
pid=$!
measure predict "$hetal" client predict --encrypted --features "$target-test" --client me --bundle box
wait "$pid"
cat infer.row
measure reference "$hetal" reference --features "$target-train" --limit "$limit" \
  --test-features "$target-test" --lower-network lower.tln --batch 256 "${cfg[@]}"
echo
tr '\r' '\n' <server-train-head.out | grep "^server:" || true
grep -h "best epoch\|epoch [0-9]*:\|accuracy" watch.out predict.out reference.out
