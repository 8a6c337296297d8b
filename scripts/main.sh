#!/usr/bin/env bash
# The main job: install, build, and run the engine tour at the production parameters
# (N = 2^16, 128-bit, sparse secret h = 192). Later issues turn this into encrypted training.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec ./build/hetal tour "$@"
