# measure NAME command... (sourced by the bench scripts): runs the command under
# /usr/bin/time -v (stdout to NAME.out, stderr to NAME.time) and prints a markdown row of its
# wall time and peak resident memory.
measure() {
  local name=$1
  shift
  /usr/bin/time -v "$@" >"$name.out" 2>"$name.time"
  printf '| %s | %s | %.0f MB |\n' "$name" \
    "$(sed -n 's/.*Elapsed (wall clock) time (h:mm:ss or m:ss): //p' "$name.time")" \
    "$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$name.time" | awk '{print $1 / 1000}')"
}
