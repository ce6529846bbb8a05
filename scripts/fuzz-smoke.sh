#!/usr/bin/env bash
# Builds the libFuzzer targets of tests/fuzz/ into ./build-fuzz (clang-19, -DQLC_FUZZ=ON:
# -fsanitize=fuzzer,address,undefined) and runs each for QLC_FUZZ_SECONDS (default 60) seconds
# over its seed corpus tests/fuzz/corpus/<target>/, QLC_FUZZ_JOBS (default: the core count) at a
# time. New inputs go to build-fuzz/corpus/<target>/ (the seeds are never written), findings to
# build-fuzz/artifacts/. Exits non-zero on any finding (crash, sanitizer report, leak, timeout,
# out-of-memory). QLC_FUZZ_TARGETS narrows the list; QLC_FUZZ_RUNS=N also stops a target after N
# inputs; QLC_FUZZ_ARGS adds libFuzzer flags. The long runs of docs/security.md:
# QLC_FUZZ_SECONDS=600 QLC_FUZZ_RUNS=1000000.
# A finding is printed loudly (a FUZZ FINDING banner, the reproducer's path, the command that
# replays it and, for inputs up to 64 KiB, its bytes in base64, so a CI log alone reproduces it).
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${QLC_FUZZ_SECONDS:-60}
jobs=${QLC_FUZZ_JOBS:-$(nproc)}
targets=(${QLC_FUZZ_TARGETS:-qir safetensors gguf config import})

CC=clang-19 CXX=clang++-19 cmake -S . -B build-fuzz -G Ninja -DQLC_FUZZ=ON -DQLC_BUILD_TESTS=OFF \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g" \
  -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O1 -g" >/dev/null
cmake --build build-fuzz --target qlc-fuzz-all -j"$(nproc)"

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
mkdir -p build-fuzz/artifacts build-fuzz/logs
# Artifacts newer than this stamp are this run's findings (older ones are kept, not re-reported).
stamp=build-fuzz/logs/run-start
touch "$stamp"
run_one() {
  local t=$1 limit
  mkdir -p "build-fuzz/corpus/$t"
  limit=(-max_total_time="$secs")
  [ -z "${QLC_FUZZ_RUNS:-}" ] || limit+=(-runs="$QLC_FUZZ_RUNS")
  # -timeout: any input taking 10 s is a hang; -rss_limit_mb: 2 GB is an out-of-memory finding.
  # shellcheck disable=SC2086 # QLC_FUZZ_ARGS: extra libFuzzer flags, split on spaces
  "build-fuzz/bin/qlc-fuzz-$t" "${limit[@]}" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    ${QLC_FUZZ_ARGS:-} \
    -artifact_prefix="build-fuzz/artifacts/$t-" "build-fuzz/corpus/$t" "tests/fuzz/corpus/$t" \
    >"build-fuzz/logs/$t.log" 2>&1
}
export -f run_one
export secs

echo "fuzz-smoke: ${targets[*]}: $secs s${QLC_FUZZ_RUNS:+ or $QLC_FUZZ_RUNS runs} each, $jobs at a time"
printf '%s\n' "${targets[@]}" | xargs -P "$jobs" -I{} bash -c 'run_one {} && echo "fuzz-smoke: {} ok" || echo "fuzz-smoke: {} FAILED"' \
  | tee build-fuzz/logs/summary.txt
passed=0 failed=0
for t in "${targets[@]}"; do
  log="build-fuzz/logs/$t.log"
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  cov=$(grep -o 'cov: [0-9]* ft: [0-9]*' "$log" | tail -1 || true)
  if grep -qx "fuzz-smoke: $t ok" build-fuzz/logs/summary.txt; then
    passed=$((passed + 1))
    echo "fuzz-smoke: $t: ${execs:-?} execs (${rate:-?}/s), ${cov:-cov: ?}"
  else
    failed=$((failed + 1))
    echo "fuzz-smoke: $t FAILED (${execs:-?} execs); the end of build-fuzz/logs/$t.log:"
    tail -60 "$log"
    found=0
    while IFS= read -r a; do
      found=1
      echo "================================================================================"
      echo "FUZZ FINDING: target $t: reproducer $PWD/$a ($(stat -c %s "$a") bytes)"
      echo "  replay: build-fuzz/bin/qlc-fuzz-$t $a"
      if [ "$(stat -c %s "$a")" -le 65536 ]; then
        echo "  base64 (decode with: base64 -d > repro):"
        base64 -w 100 "$a" | sed 's/^/    /'
      fi
      echo "================================================================================"
    done < <(find build-fuzz/artifacts -name "$t-*" -newer "$stamp" -type f | sort)
    [ "$found" -eq 1 ] || echo "FUZZ FAILURE: target $t failed without writing a reproducer (see the log above)"
  fi
done
echo "fuzz-smoke: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
