#!/usr/bin/env bash
# Which MobileNetV2 layer and input size (docs/benchmarks.md, "Pre-trained features"): plain
# reference on the first 12000 MNIST (or Fashion-MNIST) training images (seeded 87.5 / 12.5
# split: 10500 train / 1500 validation), standardised features, Nesterov, batch 256, up to 30
# epochs, patience 3, lr 0.03 (the full sets' choice; LR=0.1 bench/feature_sweep.sh to vary).
# Choices are read from the validation loss; the test column (first 2000 test images) is
# printed only to confirm. Features are cached, so a rerun costs seconds (the first run
# ~10 min on 2 cores, most of it the 224 x 224 extraction).
# Usage: bench/feature_sweep.sh [mnist|fashion-mnist] [hetal binary]
set -euo pipefail
cd "$(dirname "$0")/.."
d=${1:-mnist}
hetal=${2:-build/hetal}
# Only the exact run is read; where its simulation leaves the encrypted softmax's range (lr 0.5
# at some sizes), hetal says so on stderr and exits 1 after printing the exact line.
run() {
  { "$hetal" reference --dataset "$d" --limit 12000 --test-limit 2000 --lr "${LR:-0.03}" \
    --batch 256 --epochs 30 --patience 3 "$@" || true; } | grep '^exact'
}
for s in 224 160 128 96 64; do
  echo "== input $s x $s, block_13_expand_relu"
  run --input-size "$s"
done
for l in block_6_expand_relu block_12_add block_13_expand_relu block_15_add block_16_project_BN out_relu; do
  echo "== input 96 x 96, $l"
  run --layer "$l"
done
