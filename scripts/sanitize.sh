#!/usr/bin/env bash
# Builds qlc with AddressSanitizer + UndefinedBehaviorSanitizer (gcc, -DQLC_SANITIZE=ON:
# -fsanitize=address,undefined -fno-sanitize-recover=all, -O1 -g with assertions on) into
# ./build-asan and runs the whole ctest suite there (unit, lit, fuzz corpus replay, hardening).
# Any sanitizer report fails the test that triggered it: ASan/UBSan abort the process (lit's `not`
# counts an abort as a failure), leaks included. Extra arguments go to ctest (e.g. -R, -L).
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build-asan -G Ninja -DQLC_SANITIZE=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g" -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O1 -g" >/dev/null
cmake --build build-asan -j"$(nproc)"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:detect_stack_use_after_return=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1:abort_on_error=1}
ctest --test-dir build-asan --output-on-failure -j"$(nproc)" --timeout 600 "$@"
