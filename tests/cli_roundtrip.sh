#!/usr/bin/env bash
# End-to-end check of the hetal CLI at the small secure preset T13: keygen (client), encrypt
# (client, public and seeded), eval (server, public keys only), decrypt (client); and the error
# paths a user hits (insecure parameters, a corrupted file, a missing key).
set -euo pipefail
work=$1
rm -rf "$work" && mkdir -p "$work"
cd "$work"
fail() { echo "FAIL: $*" >&2; exit 1; }
close() { awk -v a="$1" -v b="$2" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d < 1e-4) }'; }

"$HETAL" keygen --preset T13 --dir keys --rotations 1,2,-1 >/dev/null
[[ $(stat -c %a keys/secret.key) == 600 ]] || fail "secret key is not owner-only"
printf '0.5\n-0.25\n1.5\n2\n' > a.txt
printf '2\n4\n-1\n0.5\n' > b.txt
"$HETAL" encrypt --dir keys --in a.txt --out a.ct >/dev/null
"$HETAL" encrypt --dir keys --in b.txt --out b.ct --seeded >/dev/null
[[ $(stat -c %s b.ct) -lt $(stat -c %s a.ct) ]] || fail "seeded ciphertext is not smaller"

"$HETAL" eval --dir keys --op mul --in a.ct --in2 b.ct --out ab.ct >/dev/null
mapfile -t got < <("$HETAL" decrypt --dir keys --in ab.ct --count 4)
want=(1 -1 -1.5 1)
for i in 0 1 2 3; do close "${got[$i]}" "${want[$i]}" || fail "mul slot $i: ${got[$i]} != ${want[$i]}"; done

"$HETAL" eval --dir keys --op rotate -k 1 --in a.ct --out r.ct >/dev/null
mapfile -t got < <("$HETAL" decrypt --dir keys --in r.ct --count 4)
want=(-0.25 1.5 2 0.5)
for i in 0 1 2 3; do close "${got[$i]}" "${want[$i]}" || fail "rotate slot $i: ${got[$i]} != ${want[$i]}"; done

# The server never needs the secret key.
mkdir server && cp keys/params.bin keys/public.key keys/relin.key keys/galois.key server/
"$HETAL" eval --dir server --op add --in a.ct --in2 b.ct --out s.ct >/dev/null
mapfile -t got < <("$HETAL" decrypt --dir keys --in s.ct --count 1)
close "${got[0]}" 2.5 || fail "add: ${got[0]}"

# Errors: clear message, non-zero exit, no crash.
if "$HETAL" keygen --preset TB13-INSECURE --dir bad >/dev/null 2>err.txt; then fail "insecure preset accepted"; fi
grep -q "not 128-bit secure" err.txt || fail "insecure refusal message: $(cat err.txt)"
"$HETAL" --insecure keygen --preset TB13-INSECURE --dir ok >/dev/null || fail "opt-in refused"
cp a.ct broken.ct && printf '\x01' | dd of=broken.ct bs=1 seek=100 conv=notrunc status=none
if "$HETAL" decrypt --dir keys --in broken.ct >/dev/null 2>err.txt; then fail "corrupted file accepted"; fi
grep -q "broken.ct" err.txt || fail "corruption message does not name the file: $(cat err.txt)"
if "$HETAL" decrypt --dir server --in a.ct >/dev/null 2>err.txt; then fail "decrypt without a secret key"; fi
grep -q "secret.key" err.txt || fail "missing key message: $(cat err.txt)"
"$HETAL" keygen --preset T13 --dir k1 --rotations 1 >/dev/null
"$HETAL" encrypt --dir k1 --in a.txt --out k1.ct >/dev/null
if "$HETAL" eval --dir k1 --op rotate -k -1 --in k1.ct --out x.ct 2>err.txt >/dev/null; then
  fail "rotation without its key accepted"
fi
grep -q "Galois key" err.txt || fail "missing Galois key message: $(cat err.txt)"
printf 'nan\n' > nan.txt
if "$HETAL" encrypt --dir keys --in nan.txt --out n.ct 2>err.txt >/dev/null; then fail "NaN accepted"; fi
echo "cli round trip: all checks passed"
