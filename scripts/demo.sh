#!/usr/bin/env bash
# Sets up attnedit and runs the main job on its embedded default: a recall
# teacher trained from scratch, converted to MLA and to GateSWA, distilled,
# and compared (see README "Two commands"). Extra arguments go to
# `attnedit-run demo` (e.g. --scale 0.2 for a quick run, --resume).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh build
[[ " $* " == *" --resume "* ]] || rm -rf build/demo
build/bin/attnedit-run demo --out build/demo "$@"
