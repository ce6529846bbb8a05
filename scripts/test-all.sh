#!/usr/bin/env bash
# Every test qlc has, as CI runs it (docs/security.md, "CI"): the plain build and its ctest suite
# (unit, lit, fuzz corpus replay), the whole suite again under ASan + UBSan (scripts/sanitize.sh),
# a short libFuzzer smoke of every target (scripts/fuzz-smoke.sh) and the ThreadSanitizer run of
# the concurrency tests (scripts/tsan.sh). Every step runs even when an earlier one failed, so one
# CI log shows every failure; the script fails if any step failed. It prints the time of each step
# and, at the end, ctest's summary of the plain build again.
#
#   QLC_FUZZ_SECONDS   seconds per fuzz target (default here: 60)
#   QLC_TEST_STEPS     the steps to run (default: "build ctest sanitize fuzz tsan")
set -uo pipefail
cd "$(dirname "$0")/.."
export QLC_FUZZ_SECONDS=${QLC_FUZZ_SECONDS:-60}
steps=(${QLC_TEST_STEPS:-build ctest sanitize fuzz tsan})
mkdir -p build-logs

run_build() { bash scripts/build.sh; }
run_ctest() { ctest --test-dir build --output-on-failure -j"$(nproc)" 2>&1 | tee build-logs/ctest.log; }
run_sanitize() { bash scripts/sanitize.sh; }
run_fuzz() { bash scripts/fuzz-smoke.sh; }
run_tsan() { bash scripts/tsan.sh; }

declare -A took status
failed=()
t_all=$(date +%s)
for s in "${steps[@]}"; do
  if ! declare -F "run_$s" >/dev/null; then
    echo "test-all: unknown step '$s' (build ctest sanitize fuzz tsan)" >&2
    exit 2
  fi
  echo "=== test-all: $s ($(date -u +%H:%M:%S) UTC)"
  t0=$(date +%s)
  if "run_$s"; then status[$s]=ok; else status[$s]=FAILED; failed+=("$s"); fi
  took[$s]=$(($(date +%s) - t0))
  echo "=== test-all: $s ${status[$s]} in ${took[$s]} s"
done

echo
echo "=== test-all: summary"
for s in "${steps[@]}"; do
  printf '  %-9s %-7s %5d s\n' "$s" "${status[$s]}" "${took[$s]}"
done
total=$(($(date +%s) - t_all))
printf '  %-9s %-7s %5d s (%d min %d s)\n' total "" "$total" $((total / 60)) $((total % 60))
if [ -f build-logs/ctest.log ] && [[ " ${steps[*]} " == *" ctest "* ]]; then
  echo "ctest (build):"
  grep -E '^[0-9]+% tests passed|^Total Test time' build-logs/ctest.log | sed 's/^/  /'
fi
if [ ${#failed[@]} -gt 0 ]; then
  echo "test-all: FAILED: ${failed[*]}"
  exit 1
fi
echo "test-all: all steps passed"
