// Set-up step (never run by hetal itself): loads the MobileNetV2 that npm `nsfwjs` ships
// (ImageNet-initialised Keras model, TF.js format) and writes
//   <out>/mobilenet_v2_manifest.json  Keras topology + an index of every weight
//   <out>/mobilenet_v2_weights.bin     the weights as little-endian float32
// With --reference FILE it also writes the TF.js features (global-average-pooled layers) of the
// fixed synthetic inputs that tests/test_features.cpp rebuilds, the fixture the C++ extractor is
// checked against.
// Usage: node dump_mobilenet_v2.js <npm prefix> <out dir> [--reference FILE]
"use strict";
const path = require("path");
const fs = require("fs");
const prefix = path.resolve(process.argv[2]);
const out = path.resolve(process.argv[3]);
const refIdx = process.argv.indexOf("--reference");
const modules = path.join(prefix, "node_modules");
const tf = require(path.join(modules, "@tensorflow/tfjs"));
require(path.join(modules, "@tensorflow/tfjs-backend-wasm"));
const nsfwjs = require(path.join(modules, "nsfwjs"));

// The layers whose pooled outputs the ONNX export exposes (scripts/models/keras_to_onnx.py).
const LAYERS = ["block_3_expand_relu", "block_5_add", "block_6_expand_relu", "block_9_add",
  "block_12_add", "block_13_expand_relu", "block_15_add", "block_16_project_BN", "out_relu"];

// Synthetic NHWC input in [0, 1]; the C++ test computes the same formula.
function syntheticInput(k, size) {
  const x = new Float32Array(size * size * 3);
  for (let i = 0; i < size; ++i)
    for (let j = 0; j < size; ++j)
      for (let c = 0; c < 3; ++c) {
        const v = 0.5 + 0.5 * Math.sin(0.05 * (k + 1) * i + 0.11 * (c + 1) * j + 0.7 * k + c);
        x[(i * size + j) * 3 + c] = v;
      }
  return x;
}

(async () => {
  await tf.setBackend("wasm");
  await tf.ready();
  const model = (await nsfwjs.load("MobileNetV2")).model;
  const manifest = [];
  const buffers = [];
  let offset = 0;
  for (const layer of model.layers)
    for (const w of layer.weights) {
      const data = await w.read().data();
      const bytes = Buffer.from(new Float32Array(data).buffer);
      manifest.push({ layer: layer.name, name: w.name, shape: w.shape, offset, count: data.length });
      buffers.push(bytes);
      offset += bytes.length;
    }
  fs.mkdirSync(out, { recursive: true });
  const topology = model.toJSON(null, false);
  fs.writeFileSync(path.join(out, "mobilenet_v2_weights.bin"), Buffer.concat(buffers));
  fs.writeFileSync(path.join(out, "mobilenet_v2_manifest.json"),
    JSON.stringify({ topology: typeof topology === "string" ? JSON.parse(topology) : topology,
      weights: manifest, layers: LAYERS }));
  console.log(`mobilenet_v2: ${manifest.length} weight tensors, ${offset} bytes`);

  if (refIdx > 0) {
    const size = 224, count = 2;
    const outputs = LAYERS.map((n) => tf.layers.globalAveragePooling2d({}).apply(model.getLayer(n).output));
    const sub = tf.model({ inputs: model.inputs, outputs });
    const xs = [];
    for (let k = 0; k < count; ++k) xs.push(syntheticInput(k, size));
    const x = tf.tensor4d(Float32Array.from(xs.flatMap((a) => Array.from(a))), [count, size, size, 3]);
    const ys = sub.predict(x);
    const ref = { model: "nsfwjs@4.4.0 MobileNetV2", input_size: size, inputs: count,
      input_formula: "0.5 + 0.5 sin(0.05 (k+1) i + 0.11 (c+1) j + 0.7 k + c), NHWC, i row, j column",
      features: {} };
    for (let l = 0; l < LAYERS.length; ++l) ref.features[LAYERS[l]] = Array.from(await ys[l].data());
    fs.writeFileSync(path.resolve(process.argv[refIdx + 1]), JSON.stringify(ref));
    console.log("reference features written");
  }
})().catch((e) => { console.error(e); process.exit(1); });
