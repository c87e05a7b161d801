#!/usr/bin/env bash
# Installs the build tree into a scratch prefix, builds the consumer against
# it with find_package(AttnEdit), checks that the package's paths point into
# the prefix, and that the consumer parses an attnedit op.
set -euo pipefail
build=$1 work=$2 mlir_dir=$3
rm -rf "$work" && mkdir -p "$work"
cmake --install "$build" --prefix "$work/prefix" > "$work/install.log"
cmake -G Ninja -S "$(dirname "$0")" -B "$work/consumer" \
  -DCMAKE_PREFIX_PATH="$work/prefix" -DMLIR_DIR="$mlir_dir" \
  -DATTNEDIT_EXPECTED_PREFIX="$work/prefix" > "$work/configure.log"
cmake --build "$work/consumer" > "$work/build.log"
"$work/consumer/consumer" | grep -q "attnedit.silu"
echo "package consumer: parsed attnedit.silu through find_package(AttnEdit)"
