# Checks shared by the CLI tests (sourced): fail with a message; expect a refusal.
fail() { echo "FAIL: $*" >&2; exit 1; }
refused() {  # refused <grep pattern> <command...>: non-zero exit and the message on stderr
  local pattern=$1
  shift
  if "$@" >out.txt 2>err.txt; then fail "accepted: $*"; fi
  grep -q "$pattern" err.txt || fail "message for '$*' lacks '$pattern': $(cat err.txt)"
}
