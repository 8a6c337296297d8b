#!/usr/bin/env bash
# How the main job's rows, epochs and learning rate were chosen (docs/benchmarks.md, "The main
# job"): each candidate of 5-6 steps (the first R MNIST training images, E epochs of batch 1024) is
# trained in the plain simulation of the encrypted protocol and scored on a common hold-out,
# MNIST *training* images 20000-29999, which no candidate trains on (the test set is never
# used). Prints hold-out accuracy and the candidate's own validation loss. GRID="2926:2" for
# one candidate (rows:epochs).
# Usage: bench/mainjob_grid.sh [hetal binary]   (features cached after the first run: ~4 min)
set -euo pipefail
cd "$(dirname "$0")/.."
hetal=${1:-build/hetal}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$hetal" client extract --dataset mnist --split train --out "$tmp/all" >/dev/null
# Rows [a, b) of an extracted folder as a folder of its own (.npy v1 headers, stdlib only).
slice() {
  python3 - "$tmp/all" "$1" "$2" "$3" <<'PY'
import ast, os, shutil, sys
src, a, b, dst = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
os.makedirs(dst, exist_ok=True)
for name in ("features.npy", "labels.npy"):
    raw = open(os.path.join(src, name), "rb").read()
    start = 10 + int.from_bytes(raw[8:10], "little")
    head = ast.literal_eval(raw[10:start].decode())
    shape = tuple(head["shape"])
    width = 1
    for n in shape[1:]:
        width *= n
    row = width * int(head["descr"][2:])
    new = {"descr": head["descr"], "fortran_order": False, "shape": (b - a,) + shape[1:]}
    text = repr(new)
    text += " " * (63 - (10 + len(text)) % 64) + "\n"
    with open(os.path.join(dst, name), "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + len(text).to_bytes(2, "little") + text.encode())
        f.write(raw[start + a * row:start + b * row])
shutil.copy(os.path.join(src, "classes.txt"), dst)
PY
}
slice 20000 30000 "$tmp/hold"
for c in ${GRID:-2341:3 2926:2 3511:2 5851:1}; do
  rows=${c%:*} epochs=${c#*:}
  slice 0 "$rows" "$tmp/r$rows"
  for lr in 0.2 0.3 0.4 0.5 0.6; do
    printf '%s rows x %s epochs, lr %s: ' "$rows" "$epochs" "$lr"
    "$hetal" reference --features "$tmp/r$rows" --test-features "$tmp/hold" --lr "$lr" \
      --epochs "$epochs" --batch 1024 | grep '^simulation:' | sed 's/test accuracy/hold-out accuracy/'
  done
done
