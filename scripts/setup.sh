#!/usr/bin/env bash
# Installs exactly the Debian packages attnedit needs, then configures and builds it.
# Idempotent and non-interactive: re-running only rebuilds what changed.
# Usage: scripts/setup.sh [BUILD_DIR]   (default: build)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${1:-build}

PACKAGES=(
  cmake ninja-build g++ ccache
  llvm-19-dev llvm-19-tools libmlir-19-dev mlir-19-tools   # MLIR 19 + FileCheck/lit
  libopenblas-dev                                         # cblas GEMMs
  libopenblas0-openmp                                     # ... threaded by OpenMP
  libomp-19-dev                                           # LLVM OpenMP: compiled parallel loops
  libflatbuffers-dev flatbuffers-compiler libspdlog-dev
  libsentencepiece-dev                                    # tokenizer.model files
  libcpp-httplib-dev pkgconf curl                         # attnedit-run serve (+ its test client)
  libutf8proc-dev                                         # tokenizer.json Unicode normalizers
  libopenmpi-dev openmpi-bin                              # mpirun -np N attnedit-run distill|train
  libgtest-dev libgmock-dev libbenchmark-dev
  python3-torch python3-numpy                             # independent numerics reference
  clang-19 libclang-rt-19-dev                             # libFuzzer + sanitizers (tests/fuzz)
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  echo "setup: installing ${missing[*]}"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

LLVM_PREFIX=$(llvm-config-19 --prefix)
if [ ! -f "$BUILD_DIR/build.ninja" ]; then
  cmake -G Ninja -S . -B "$BUILD_DIR" \
    -DCMAKE_BUILD_TYPE=Release \
    -DMLIR_DIR="$LLVM_PREFIX/lib/cmake/mlir" \
    -DLLVM_EXTERNAL_LIT="$LLVM_PREFIX/build/utils/lit/lit.py"
fi
cmake --build "$BUILD_DIR"
