#!/usr/bin/env bash
# Replays a fuzz target's seeds and regression inputs (each must pass), then
# fuzzes it for SECONDS from its corpus.
# usage: smoke.sh FUZZ_BIN_DIR INPUTS_DIR CORPUS_DIR TARGET SECONDS
set -euo pipefail
bin=$1/fuzz_$4; inputs=$2; corpus=$3/$4; target=$4; seconds=$5
mkdir -p "$corpus"
dirs=()
for kind in seeds regressions; do
  [ -d "$inputs/$kind/$target" ] && dirs+=("$inputs/$kind/$target")
done
# -runs=0 executes every input once and exits: a crash, leak or hang fails.
"$bin" -runs=0 -timeout=20 -rss_limit_mb=4096 "${dirs[@]}"
cp -n "${dirs[@]/%//}"* "$corpus"/ 2>/dev/null || true
# Findings go to CORPUS_DIR/../crashes/TARGET-*; the log keeps the report.
mkdir -p "$3/../crashes"
"$bin" -max_total_time="$seconds" -timeout=20 -rss_limit_mb=4096 -print_final_stats=1 \
  -artifact_prefix="$3/../crashes/$target-" "$corpus"
