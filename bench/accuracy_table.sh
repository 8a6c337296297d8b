#!/usr/bin/env bash
# The plain-reference accuracy table of docs/benchmarks.md ("Pre-trained features"): features of
# the full training and test sets (MobileNetV2 block 13 at 96 x 96 for images, GloVe for text),
# HETAL's schedule (Nesterov, 87.5 / 12.5 seeded split, patience 3) with the learning rate and
# epochs chosen on the validation split (lr grid in the docs), exact softmax and simulation,
# tested on the held-out test sets. Image extraction is cached (~6 min per 70000 images on 2
# cores the first time). Usage: bench/accuracy_table.sh [hetal binary]
set -euo pipefail
cd "$(dirname "$0")/.."
hetal=${1:-build/hetal}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

for d in mnist fashion-mnist; do
  echo "== $d: MobileNetV2 block_13_expand_relu (576-d, 96 x 96), standardised"
  "$hetal" reference --dataset "$d" --lr 0.03 --batch 1024 --epochs 30 --patience 3 | tail -3
  echo "== $d: raw pixels, unit rows (HETAL's lr 2.0)"
  "$hetal" reference --dataset "$d" --pixels | tail -3
done
for d in fine-foods reuters-corn reuters-grain austen; do
  for s in train test; do "$hetal" client extract --text-dataset "$d" --split "$s" --out "$out/$d-$s" >/dev/null; done
  # lowest validation loss of the grid {0.03, 0.1, 0.3, 1} (docs/benchmarks.md)
  case $d in fine-foods | austen) lr=0.03 ;; reuters-corn) lr=0.3 ;; *) lr=0.1 ;; esac
  echo "== $d: GloVe 6B 100-d mean, standardised, lr $lr, batch 256"
  "$hetal" reference --features "$out/$d-train" --test-features "$out/$d-test" --lr "$lr" --batch 256 \
    --epochs 30 --patience 5 | tail -3
done
