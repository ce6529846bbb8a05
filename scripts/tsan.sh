#!/usr/bin/env bash
# ThreadSanitizer run of the concurrency tests (docs/security.md, "ThreadSanitizer"): builds, with
# clang-19 and -fsanitize=thread (-O1 -g, assertions on) in ./build-tsan, only the unit-test
# binaries that hold a test whose name contains "Concurrent" (found in the sources of tests/unit, so
# a new such test joins by its name alone), and runs those tests with halt_on_error=1: any data
# race, lock-order inversion or other report fails the run. JIT-compiled kernels, libLLVM and the
# system libraries are not instrumented (their accesses are invisible to TSan; their locks are
# pthread calls, which it sees). Suppressions, each explained, live in scripts/tsan.supp.
# Extra arguments go to every test binary (e.g. --gtest_repeat=5).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

# The sources with such a test: TEST(Suite, Name) / TEST_F / TEST_P where Suite or Name contains it.
mapfile -t sources < <(grep -rlE --include='*.cpp' \
  '^[[:space:]]*TEST(_F|_P)?[[:space:]]*\([[:space:]]*[A-Za-z0-9_]*(Concurrent[A-Za-z0-9_]*[[:space:]]*,|,[[:space:]]*[A-Za-z0-9_]*Concurrent)' \
  tests/unit | sort)
if [ ${#sources[@]} -eq 0 ]; then
  echo "tsan: no test named *Concurrent* under tests/unit" >&2
  exit 1
fi

launcher=()
if command -v ccache >/dev/null; then
  launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)
fi
flags="-fsanitize=thread -fno-omit-frame-pointer -O1 -g"
CC=clang-19 CXX=clang++-19 cmake -S . -B build-tsan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="$flags" -DCMAKE_C_FLAGS_RELWITHDEBINFO="$flags" \
  -DCMAKE_EXE_LINKER_FLAGS=-fsanitize=thread -DCMAKE_SHARED_LINKER_FLAGS=-fsanitize=thread \
  "${launcher[@]}" >/dev/null

# Each source's target, from the object it compiles to: <dir>/CMakeFiles/<target>.dir/<file>.o.
targets=()
all=$(ninja -C build-tsan -t targets all)
for s in "${sources[@]}"; do
  t=$(printf '%s\n' "$all" | sed -n "s|^$(dirname "$s")/CMakeFiles/\([^/]*\)\.dir/$(basename "$s")\.o:.*|\1|p" | head -1)
  if [ -z "$t" ]; then
    echo "tsan: $s is not compiled by any target" >&2
    exit 1
  fi
  [[ " ${targets[*]} " == *" $t "* ]] || targets+=("$t")
done
echo "tsan: building ${targets[*]}"
cmake --build build-tsan -j"$(nproc)" --target "${targets[@]}"

# halt_on_error: the first report ends the process with TSan's exit code (66), so a report can
# not hide behind a test that otherwise passes.
export TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 history_size=4 suppressions=$root/scripts/tsan.supp ${TSAN_OPTIONS:-}"
failed=0 ran=0
for t in "${targets[@]}"; do
  bin=build-tsan/bin/$t
  n=$("$bin" --gtest_list_tests --gtest_filter='*Concurrent*' | grep -c '^  ' || true)
  echo "tsan: $t: $n test(s) named *Concurrent*"
  ran=$((ran + n))
  log=build-tsan/tsan-$t.log
  if "$bin" --gtest_filter='*Concurrent*' "$@" >"$log" 2>&1 && ! grep -q 'WARNING: ThreadSanitizer' "$log"; then
    grep -E '^\[  (PASSED|FAILED) ' "$log" || true
  else
    failed=$((failed + 1))
    echo "tsan: $t FAILED (exit or report); $log:"
    # The report (stacks of both accesses) or the failing test, not the whole log.
    if grep -q 'WARNING: ThreadSanitizer' "$log"; then
      sed -n '/WARNING: ThreadSanitizer/,/^SUMMARY: ThreadSanitizer/p' "$log" | head -200
    else
      tail -60 "$log"
    fi
  fi
done
if [ "$ran" -eq 0 ]; then
  echo "tsan: the binaries hold no *Concurrent* test" >&2
  exit 1
fi
echo "tsan: $ran tests in ${#targets[@]} binaries, $failed binaries failed"
[ "$failed" -eq 0 ]
