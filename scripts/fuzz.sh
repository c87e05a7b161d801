#!/usr/bin/env bash
# Fuzzes every parser (or the targets named) for SECONDS each, one after
# another, keeping corpora in build/fuzz/corpus and findings in
# build/fuzz/crashes; prints executions and coverage per target.
# usage: scripts/fuzz.sh [SECONDS] [TARGET...]   (default 600 s, all targets)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-600}; shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(safetensors config llama2c tokenizer llama2c_tokenizer recipe checkpoint mlir)
scripts/setup.sh build >/dev/null
[ -d build/fuzz/build ] || { echo "fuzz.sh: no fuzz build (clang++-19 missing?)" >&2; exit 1; }
cmake --build build --target attnedit-fuzzers >/dev/null
/usr/bin/python3 tests/fuzz/make_inputs.py build/fuzz/inputs
status=0
for t in "${targets[@]}"; do
  log=build/fuzz/$t.log
  if tests/fuzz/smoke.sh build/fuzz/build build/fuzz/inputs build/fuzz/corpus "$t" "$seconds" >"$log" 2>&1; then
    result=ok
  else
    result="FINDING (see $log and build/fuzz/crashes/$t-*)"; status=1
  fi
  runs=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$log" | tail -1 | awk '{print $2}')
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | awk '{print $2}')
  printf '%-18s %6ss  %10s runs  cov %6s  %s\n' "$t" "$seconds" "${runs:-?}" "${cov:-?}" "$result"
done
exit $status
