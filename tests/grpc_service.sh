#!/usr/bin/env bash
# The network transport end to end through the CLI, on loopback with mutual TLS
# (TB13-INSECURE, synthetic 3-class data): `hetal server serve` as its own process; a client
# keygen / encrypt --server (upload + submit) / watch / decrypt / predict --encrypted. The server
# is killed with SIGKILL after the job's first checkpoint and restarted on the same port: the
# job resumes from its checkpoint, the client's watch reattaches, and the final model equals an
# uninterrupted run's over the directory transport. Then: a second job with the same keys
# uploads no key again; a job left without decisions stops cleanly at the deadline; cancel;
# another tenant's job id answers NOT_FOUND; a certificate from another CA is refused; the
# server serves on throughout.
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
work=$1
rm -rf "$work" && mkdir -p "$work"
cd "$work"
fail() { echo "FAIL: $*" >&2; tail -20 serve.log >&2 || true; exit 1; }
server_pid=
cleanup() { [[ -n $server_pid ]] && kill -9 "$server_pid" 2>/dev/null || true; }
trap cleanup EXIT

"$src/scripts/make_certs.sh" certs >/dev/null
awk 'BEGIN { srand(5); for (c = 0; c < 3; c++) for (k = 0; k < 20; k++) m[c, k] = rand() - 0.5;
  for (r = 0; r < 290; r++) { c = r % 3; line = "";
    for (k = 0; k < 20; k++) line = line (k ? "," : "") sprintf("%.6f", m[c, k] + 0.3 * (rand() - 0.5));
    print line > "x.csv"; print c > "y.csv" } }'

start_server() {  # start_server LISTEN [options]
  local listen=$1
  shift
  rm -f port
  "$HETAL" --insecure server serve --listen "$listen" --data srv --ca certs/ca.crt \
    --cert certs/server.crt --key certs/server.key --port-file port --heartbeat 1 "$@" \
    >> serve.log 2>&1 &
  server_pid=$!
  for _ in $(seq 100); do [[ -s port ]] && break; sleep 0.1; done
  [[ -s port ]] || fail "the server did not start"
  port=$(cat port)
}
tls() { echo "--server 127.0.0.1:$port --ca certs/ca.crt --cert certs/$1.crt --key certs/$1.key"; }
keys() {  # keys CLIENT EPOCHS
  "$HETAL" --insecure client keygen --client "$1" --preset TB13-INSECURE --batch 128 --lr 1 \
    --epochs "$2" --patience 0 --seed 3 --feature-count 20 --classes 3 $3 >/dev/null
}

# The reference: the same client configuration over the directory transport, uninterrupted.
keys plain 3 "--bundle plain/bundle"
"$HETAL" --insecure client encrypt --client plain --bundle plain/bundle --features x.csv \
  --labels y.csv >/dev/null 2>&1
"$HETAL" --insecure server train --bundle plain/bundle >/dev/null 2>&1 &
ref_server=$!
"$HETAL" --insecure client watch --client plain --bundle plain/bundle --timeout 600 >/dev/null 2>&1
wait $ref_server
"$HETAL" --insecure client decrypt --client plain --bundle plain/bundle --out plain.csv >/dev/null

# Over gRPC, with the server killed after the first checkpoint.
start_server 127.0.0.1:0
keys a 3 "$(tls tenant-a)"
"$HETAL" --insecure client encrypt --client a $(tls tenant-a) --features x.csv --labels y.csv \
  > a/encrypt.log 2>/dev/null || fail "encrypt --server"
job=$(cat a/job.txt)
grep -q "job $job" a/encrypt.log || fail "no job id printed"
"$HETAL" --insecure client watch --client a $(tls tenant-a) --timeout 600 > a/watch.log 2>a/watch.err &
watch=$!
ck=$(echo srv/tenants/*/jobs/"$job")/server/checkpoint.json
for _ in $(seq 600); do [[ -f $ck ]] && break; sleep 0.2; done
[[ -f $ck ]] || fail "no checkpoint written"
kill -9 "$server_pid"
wait "$server_pid" 2>/dev/null || true
t_kill=$(date +%s.%N)
start_server "127.0.0.1:$port"
for _ in $(seq 100); do grep -q "resuming after a restart" serve.log && break; sleep 0.1; done
grep -q "job ${job:0:8}: resuming after a restart" serve.log || fail "the job did not resume"
wait $watch || { cat a/watch.err >&2; fail "client watch failed"; }
grep -q "best epoch 3" a/watch.log || fail "client watch printed no result"
"$HETAL" --insecure client status --client a $(tls tenant-a) | grep -q "DONE, 3 epochs" ||
  fail "status after the run"
"$HETAL" --insecure client decrypt --client a $(tls tenant-a) --out a.csv >/dev/null
paste -d, <(grep -v '^#' plain.csv | tr ',' '\n') <(grep -v '^#' a.csv | tr ',' '\n') |
  awk -F, '{ d = $1 - $2; if (d < 0) d = -d; if (d > m) m = d } END { print "max |diff| vs directory transport", m; exit !(m < 1e-3) }' ||
  fail "the model trained over gRPC (killed and resumed) differs from the directory transport's"
"$HETAL" --insecure client predict --encrypted --client a $(tls tenant-a) --features x.csv \
  --labels y.csv 2>/dev/null | grep -q "encrypted-inference accuracy" || fail "encrypted predict"
awk -v a="$(date +%s.%N)" -v b="$t_kill" 'BEGIN { printf "kill -9 to the end of training: %.1f s\n", a - b }'

# A second job with the same keys: the parameters and the four key objects are not sent again.
"$HETAL" --insecure client encrypt --client a $(tls tenant-a) --features x.csv --labels y.csv \
  > a/encrypt2.log 2>/dev/null || fail "second encrypt --server"
grep -q "(5 already on the server)" a/encrypt2.log || { cat a/encrypt2.log; fail "keys uploaded again"; }
# Cancel is asynchronous (the worker records it at the end of its step, which under load takes
# longer than the call waits): the job must reach CANCELLED soon after.
"$HETAL" --insecure client cancel --client a $(tls tenant-a) >cancel.txt || fail "cancel"
for _ in $(seq 120); do
  grep -q "CANCELLED" cancel.txt && break
  sleep 0.5
  "$HETAL" --insecure client status --client a $(tls tenant-a) >cancel.txt || fail "status after cancel"
done
grep -q "CANCELLED" cancel.txt || fail "cancel: $(cat cancel.txt)"

# Another tenant asking for tenant-a's job: NOT_FOUND, as for an id that does not exist.
mkdir -p b && cp a/job.txt b/job.txt
out=$("$HETAL" --insecure client status --client b $(tls tenant-b) 2>&1) && fail "tenant-b saw tenant-a's job"
grep -q "no such job" <<<"$out" || fail "tenant isolation: $out"
# A certificate from another CA (same common name as tenant-a): refused at the handshake.
out=$(timeout 60 "$HETAL" --insecure client status --client a --server "127.0.0.1:$port" \
  --ca certs/ca.crt --cert certs/rogue.crt --key certs/rogue.key 2>&1) && fail "rogue certificate accepted"
grep -q "status 14" <<<"$out" || fail "rogue certificate: $out"

# A job whose client never answers stops cleanly at the decision deadline.
kill "$server_pid" && wait "$server_pid" 2>/dev/null || true
start_server "127.0.0.1:$port" --decision-timeout 2
keys c 3 "$(tls tenant-b)"
"$HETAL" --insecure client encrypt --client c $(tls tenant-b) --features x.csv --labels y.csv \
  >/dev/null 2>&1 || fail "encrypt (tenant-b)"
for _ in $(seq 300); do
  s=$("$HETAL" --insecure client status --client c $(tls tenant-b))
  [[ $s == *DONE* ]] && break
  sleep 0.2
done
grep -q "DONE, 1 epochs done (1 epochs; stopped: no decision within 2 s)" <<<"$s" || fail "deadline: $s"
# Still serving tenant-a.
"$HETAL" --insecure client status --client a $(tls tenant-a) | grep -q "CANCELLED" || fail "serving"
echo "grpc service: OK"
