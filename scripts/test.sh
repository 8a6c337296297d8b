#!/usr/bin/env bash
# Install, build and run the unit tests (the default label; `slow` tests are opt-in:
# scripts/test.sh -L slow).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cd build
if (($#)); then
  exec ctest --output-on-failure -j"$(nproc)" "$@"
fi
exec ctest --output-on-failure -j"$(nproc)" -LE slow
