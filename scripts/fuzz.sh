#!/usr/bin/env bash
# Builds the libFuzzer harnesses (fuzz/) with Debian's clang, ASan and UBSan in ./build-fuzz,
# and runs each for a bounded number of inputs (default 100000) from a seed corpus of real
# objects and messages (made with ./build/hetal when it is there). Exits non-zero on a crash.
# Usage: scripts/fuzz.sh [runs]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-100000}
cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++ \
  -DHETAL_FUZZ=ON -DHETAL_BUILD_TESTS=OFF -DHETAL_BUILD_BENCH=OFF >/dev/null
cmake --build build-fuzz -j"$(nproc)" --target fuzz_objects fuzz_messages 2>&1 | grep -E "error|warning: " || true
[[ -x build-fuzz/fuzz/fuzz_objects && -x build-fuzz/fuzz/fuzz_messages ]] || { echo "fuzz build failed" >&2; exit 1; }

# Seeds: the first KiB of real objects, behind each parser's selector byte, and real messages.
seeds=build-fuzz/seeds
rm -rf "$seeds" && mkdir -p "$seeds/objects" "$seeds/messages"
if [[ -x build/hetal ]]; then
  tmp=$(mktemp -d)
  build/hetal --insecure client keygen --client "$tmp/c" --bundle "$tmp/b" --preset TB13-INSECURE \
    --batch 128 --feature-count 4 --classes 2 >/dev/null
  i=0
  for f in "$tmp"/b/keys/*; do
    for sel in 0 1 2 3 4 5 6 7 8 9; do
      { printf "\\x$(printf %02x "$sel")"; head -c 1024 "$f"; } > "$seeds/objects/$i-$sel"
    done
    i=$((i + 1))
  done
  rm -rf "$tmp"
fi
for sel in $(seq 0 17); do
  printf "\\x$(printf %02x "$sel")" > "$seeds/messages/$sel"
done
printf '\x03{"format": "hetal-bundle", "version": 1, "config": {"preset": "TB13-INSECURE", "batch": "128", "learning_rate": 1, "optimizer": "nesterov", "max_epochs": "2", "patience": "0", "validation_fraction": 0.125, "seed": "0", "weight_bound": 16}, "shape": {"features": "20", "classes": "3", "batch": "128", "slots": "4096"}, "train_rows": ["128"], "validation_rows": ["36"], "key_id": "00"}' > "$seeds/messages/meta"
printf '\x07{"epoch": "1", "stop": true, "abort": ""}' > "$seeds/messages/decision"
printf '\x0f{"format": "hetal-cryptotl", "version": 1, "dim": 100, "key_id": "00", "splits": [{"name": "train", "rows": "1554", "ciphertexts": 25}]}' > "$seeds/messages/transfer"
printf '\x11{"format": "hetal-cryptotl", "version": 1, "key_id": "00", "dim": 100, "out_dim": 98, "samples_per_ciphertext": 64, "block": 128, "splits": [{"name": "test", "rows": "604", "ciphertexts": 10, "outputs": "outputs-test"}], "seconds": 1.5}' > "$seeds/messages/result"

status=0
for f in objects messages; do
  mkdir -p "build-fuzz/corpus/$f"
  echo "fuzz_$f: $runs inputs"
  if ! build-fuzz/fuzz/fuzz_$f -runs="$runs" -max_len=4096 -timeout=20 -rss_limit_mb=4096 \
      -print_final_stats=1 "build-fuzz/corpus/$f" "$seeds/$f" > "build-fuzz/fuzz_$f.log" 2>&1; then
    status=1
    tail -40 "build-fuzz/fuzz_$f.log" >&2
  fi
  grep -E "stat::number_of_executed_units|Done" "build-fuzz/fuzz_$f.log" | tr '\n' ' '
  echo
done
exit $status
