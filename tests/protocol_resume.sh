#!/usr/bin/env bash
# The protocol as separate processes through the CLI (TB13-INSECURE, synthetic 3-class data):
# client keygen / encrypt, server train and client watch side by side; the server is killed
# (SIGKILL) after its first checkpoint and resumed with --resume; the run then completes, the
# resumed model matches an uninterrupted run's, and both predict. Then the plain reference's
# refusal of a diverging learning rate.
set -euo pipefail
work=$1
rm -rf "$work" && mkdir -p "$work"
cd "$work"
fail() { echo "FAIL: $*" >&2; exit 1; }

# 3 clusters in 20 dimensions, 290 rows (254 training rows after the split: 2 batches of 128).
awk 'BEGIN { srand(5); for (c = 0; c < 3; c++) for (k = 0; k < 20; k++) m[c, k] = rand() - 0.5;
  for (r = 0; r < 290; r++) { c = r % 3; line = "";
    for (k = 0; k < 20; k++) line = line (k ? "," : "") sprintf("%.6f", m[c, k] + 0.3 * (rand() - 0.5));
    print line > "x.csv"; print c > "y.csv" } }'

run() {  # run <name> <kill: 0|1>
  local name=$1 kill=$2
  "$HETAL" --insecure client keygen --client "$name/client" --bundle "$name/bundle" \
    --preset TB13-INSECURE --batch 128 --lr 1 --epochs 2 --patience 0 --seed 3 \
    --feature-count 20 --classes 3 >/dev/null
  "$HETAL" --insecure client encrypt --client "$name/client" --bundle "$name/bundle" \
    --features x.csv --labels y.csv 2>/dev/null >/dev/null
  "$HETAL" --insecure client watch --client "$name/client" --bundle "$name/bundle" \
    --timeout 600 > "$name/watch.log" 2>/dev/null &
  local watch=$!
  "$HETAL" --insecure server train --bundle "$name/bundle" > "$name/server.log" 2>/dev/null &
  local server=$!
  if ((kill)); then
    for _ in $(seq 600); do [[ -f $name/bundle/server/checkpoint.json ]] && break; sleep 0.2; done
    [[ -f $name/bundle/server/checkpoint.json ]] || fail "no checkpoint written"
    kill -9 "$server"
    wait "$server" 2>/dev/null || true
    [[ ! -f $name/bundle/done.json ]] || fail "server finished before it was killed"
    "$HETAL" --insecure server train --bundle "$name/bundle" --resume > "$name/server.log" 2>/dev/null
    grep -q "(resumed)" "$name/server.log" || fail "the second server run did not resume"
  else
    wait "$server"
  fi
  wait "$watch" || fail "client watch failed"
  grep -q "best epoch" "$name/watch.log" || fail "client watch printed no result"
  "$HETAL" --insecure client decrypt --client "$name/client" --bundle "$name/bundle" \
    --out "$name/model.csv" >/dev/null
}

run plain 0
run killed 1
# Same data, split, batches and schedule: the models agree up to CKKS noise.
paste -d, <(grep -v '^#' plain/model.csv | tr ',' '\n') <(grep -v '^#' killed/model.csv | tr ',' '\n') |
  awk -F, '{ d = $1 - $2; if (d < 0) d = -d; if (d > m) m = d } END { print "max |diff|", m; exit !(m < 1e-3) }' ||
  fail "the resumed model differs from the uninterrupted one"
"$HETAL" --insecure client predict --client killed/client --bundle killed/bundle \
  --features x.csv --labels y.csv | grep -q "accuracy" || fail "predict"
# The plain reference on the same data: a learning rate that drives the simulation (the
# encrypted run's twin) beyond the weight bound the model is bootstrapped under, or out of
# the softmax's input range, prints the exact run, then an error naming the step, and exits
# 1; a sane one exits 0.
"$HETAL" reference --features x.csv --labels y.csv --batch 128 --lr 1 --epochs 2 > ref.log ||
  fail "reference failed at lr 1"
grep -q "^simulation:" ref.log || fail "no simulation line at lr 1"
if "$HETAL" reference --features x.csv --labels y.csv --batch 128 --lr 5000 --epochs 2 \
  > ref.log 2> ref.err; then fail "a diverging simulation exited 0"; fi
grep -q "^exact" ref.log || fail "the exact run was not printed"
grep -q "simulation: training step .*beyond the weight bound" ref.err ||
  fail "no weight-bound message: $(cat ref.err)"
# With the weight bound out of the way, the logits leave the softmax's range.
if "$HETAL" reference --features x.csv --labels y.csv --batch 128 --lr 5000 --epochs 2 \
  --weight-bound 1e12 > ref.log 2> ref.err; then fail "a diverging simulation exited 0"; fi
grep -q "simulation: training step .*outside the encrypted softmax's input range" ref.err ||
  fail "no range message: $(cat ref.err)"
echo "protocol_resume: OK"
