#!/usr/bin/env bash
# The main job: install, build, and run the encrypted-training demo at the production parameters
# (N = 2^16, 128-bit): client and server as separate processes on MNIST, encrypted early
# stopping, encrypted inference, and the plain reference beside it. Arguments go to `hetal demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec ./build/hetal demo "$@"
