#!/bin/sh
# The installed package: `cmake --install` into a fresh prefix, then examples/ configured with
# find_package(qlc) against that prefix only, built, and run on the bundled checkpoint for both
# targets. Also checks that libqlc.so exports the public API and nothing else.
# usage: package_test.sh BUILD_DIR SOURCE_DIR WORK_DIR [CXX_FLAGS]
# CXX_FLAGS: the sanitizer flags of a QLC_SANITIZE build (an instrumented libqlc.so needs an
# instrumented consumer).
set -eu
build=$1 src=$2 work=$3 flags=${4:-}
rm -rf "$work"
mkdir -p "$work"
cmake --install "$build" --prefix "$work/prefix" > "$work/install.log"
test -f "$work/prefix/include/qlc/runtime.h"
test -f "$work/prefix/lib/cmake/qlc/qlcConfig.cmake"
lib=$(ls "$work"/prefix/lib/libqlc.so.*.*.* | head -1)
# Every exported function or object is in namespace qlc (the public API); internals and LLVM stay local.
other=$(nm -D --defined-only "$lib" | awk '$2 ~ /^[TWDBVR]$/ {print $3}' | c++filt | grep -v '^qlc::' || true)
if [ -n "$other" ]; then
  echo "libqlc.so exports symbols outside the public API:"; echo "$other" | head -20; exit 1
fi
nm -D --defined-only "$lib" | c++filt | grep -q 'qlc::Runtime::compile_checkpoint'
cmake -S "$src/examples" -B "$work/build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH="$work/prefix" -DCMAKE_CXX_FLAGS="$flags" > "$work/configure.log"
cmake --build "$work/build" > "$work/build.log"
"$work/build/compile_and_call" "$src/examples/tiny-moe" cpu
"$work/build/compile_and_call" "$src/examples/tiny-moe" npu-emu
