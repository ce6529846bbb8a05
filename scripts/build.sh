#!/usr/bin/env bash
# Configures and builds qlc into ./build (Release with assertions off; Ninja).
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=${QLC_BUILD_TYPE:-Release} "$@" >/dev/null
cmake --build build -j"$(nproc)"
