#!/usr/bin/env bash
# CryptoTL mode end to end through the CLI, client and server as separate processes over a
# bundle folder (128-bit C14 keys): server-train (libtorch) on Reuters grain, encrypt Reuters corn,
# forward, client-train, predict; the same seed gives the same upper layers; DP noise; and the
# errors a user hits (a corrupt model file, mismatched dimensions, swapped keys, another client's
# outputs, a secret key in the bundle, bad split names, a bundle without outputs).
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
work=$1
rm -rf "$work" && mkdir -p "$work"
cd "$work"
source "$src/tests/cli_checks.sh"

"$HETAL" cryptotl server-train --dataset reuters-grain --out model.tln --epochs 30 --seed 1 >log.txt
[[ $(stat -c %a model.tln) == 600 ]] || fail "the model file is not owner-only"
for s in train test; do
  "$HETAL" cryptotl encrypt --dataset reuters-corn --split $s --client client --bundle bundle >>log.txt
done
[[ $(stat -c %a client/secret.key) == 600 ]] || fail "secret key is not owner-only"
[[ ! -e bundle/secret.key && ! -e bundle/labels-train.npy ]] || fail "the bundle holds client secrets"
"$HETAL" cryptotl forward --model model.tln --bundle bundle | tee fwd.txt
grep -q "samples/s" fwd.txt || fail "forward printed no throughput"
"$HETAL" cryptotl client-train --client client --bundle bundle --out upper.pt --seed 3 --epochs 40 | tee train.txt
acc=$(sed -n "s/.*test split 'test': accuracy \([0-9.]*\) %.*/\1/p" train.txt)
[[ -n $acc ]] || fail "no test accuracy printed"
awk -v a="$acc" 'BEGIN { exit !(a > 70) }' || fail "test accuracy $acc % (corn vs not corn)"
"$HETAL" cryptotl predict --client client --bundle bundle --model upper.pt --split test --out pred.csv >/dev/null
[[ $(wc -l <pred.csv) == 605 ]] || fail "predictions: $(wc -l <pred.csv) lines for 604 rows"
"$HETAL" cryptotl client-train --client client --bundle bundle --out upper2.pt --seed 3 --epochs 40 >/dev/null
"$HETAL" cryptotl predict --client client --bundle bundle --model upper2.pt --split test --out pred2.csv >/dev/null
cmp -s pred.csv pred2.csv || fail "the same seed gave other predictions"

# DP: the noise is recorded with its guarantee and changes the outputs; without it the forward
# pass is deterministic.
cp bundle/outputs-test.cts plain-outputs.cts
"$HETAL" cryptotl forward --model model.tln --bundle bundle --dp-epsilon 10 --dp-input-radius 1 | tee dp.txt
grep -q "epsilon 10" dp.txt || fail "DP guarantee not printed"
grep -q '"sigma"' bundle/result.json || fail "result.json lacks the DP record"
cmp -s plain-outputs.cts bundle/outputs-test.cts && fail "DP noise did not change the outputs"
refused "must be positive" "$HETAL" cryptotl forward --model model.tln --bundle bundle --dp-epsilon -1
refused "epsilon must be in" "$HETAL" cryptotl forward --model model.tln --bundle bundle --dp-epsilon 500
"$HETAL" cryptotl forward --model model.tln --bundle bundle >/dev/null  # back to noise-free outputs
cmp -s plain-outputs.cts bundle/outputs-test.cts || fail "the forward pass is not deterministic"

# Errors: clear message, non-zero exit.
cp model.tln broken.tln && chmod u+w broken.tln
byte=$(od -An -tu1 -j200 -N1 broken.tln | tr -d ' ')
printf "\\x$(printf %02x $((byte ^ 1)))" | dd of=broken.tln bs=1 seek=200 conv=notrunc status=none
refused "checksum" "$HETAL" cryptotl forward --model broken.tln --bundle bundle
head -c 100 model.tln >short.tln
refused "truncated" "$HETAL" cryptotl forward --model short.tln --bundle bundle
"$HETAL" cryptotl server-train --dataset spam-a --out spam.tln --epochs 5 >/dev/null
cp bundle/result.json result.before
refused "dimension 100, the lower network takes 57" "$HETAL" cryptotl forward --model spam.tln --bundle bundle
cmp -s result.before bundle/result.json || fail "a failed forward changed the result"
ls bundle/*.new 2>/dev/null && fail "a failed forward left temporary outputs"
refused "keys for inputs of dimension 100, not 57" "$HETAL" cryptotl encrypt --dataset spam-b --client client --bundle bundle2
# another client's keys swapped into the bundle
"$HETAL" cryptotl encrypt --dataset reuters-corn --split test --client client2 --bundle bundle3 >/dev/null
cp -r bundle swapped && cp bundle3/galois.key swapped/galois.key
refused "do not hash to the request's key id" "$HETAL" cryptotl forward --model model.tln --bundle swapped
# another client's outputs
refused "other keys" "$HETAL" cryptotl client-train --client client2 --bundle bundle --out x.pt
refused "another client's inputs" "$HETAL" cryptotl encrypt --dataset reuters-corn --split test --client client2 --bundle bundle
# a secret key in the bundle, or one posing as an evaluation key
cp -r bundle withsk && cp client/secret.key withsk/
refused "refuses it" "$HETAL" cryptotl forward --model model.tln --bundle withsk
cp -r bundle skasrelin && cp client/secret.key skasrelin/relin.key
refused "relin.key" "$HETAL" cryptotl forward --model model.tln --bundle skasrelin
refused "split name" "$HETAL" cryptotl encrypt --dataset reuters-corn --name ../x --client client --bundle bundle
refused "no result.json" "$HETAL" cryptotl client-train --client client2 --bundle bundle3 --out y.pt
cp -r bundle noinputs && rm noinputs/inputs-train.cts
refused "inputs-train.cts: missing" "$HETAL" cryptotl forward --model model.tln --bundle noinputs
# outputs of inputs the client has since replaced (same size: Reuters grain's 604 test rows)
"$HETAL" cryptotl encrypt --dataset reuters-grain --split test --client client --bundle bundle >/dev/null
refused "other inputs" "$HETAL" cryptotl predict --client client --bundle bundle --model upper.pt --split test
refused "no such upper-layer model" "$HETAL" cryptotl predict --client client --bundle bundle --model none.pt
refused "no split" "$HETAL" cryptotl predict --client client --bundle bundle --model upper.pt --split valid
echo "cryptotl_cli: all checks passed"
