#!/usr/bin/env bash
# Sets up attnedit and runs the main job on the embedded default: import the
# real stories260K llama2.c model into the attnedit dialect, show the graph's
# shape, and generate its greedy story through the reference runtime.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh build
model=scripts/data/stories260K/stories260K.bin
mkdir -p build/demo
build/bin/attnedit-import "$model" -o build/demo/stories260K.mlir
echo "== imported build/demo/stories260K.mlir: op counts"
grep -o '= attnedit\.[a-z_]*' build/demo/stories260K.mlir | sort | uniq -c | sort -rn
echo "== greedy story (temperature 0, 256 tokens, as llama2.c's run.c)"
build/bin/attnedit-run generate build/demo/stories260K.mlir --temperature 0 --max-tokens 256
echo "== sampled continuation of a prompt (temperature 0.8, seed 7)"
build/bin/attnedit-run generate "$model" --prompt "Once upon a time, a little dog" \
  --temperature 0.8 --seed 7 --max-tokens 120
