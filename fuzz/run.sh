#!/usr/bin/env bash
# Runs one libFuzzer target: replays its seeds and regression inputs (every one must pass),
# then fuzzes for SECONDS (default 10) from them, niced, one job; with FUZZ_RUNS=N set it
# stops after N execs if that comes first (the long runs: FUZZ_RUNS=10000000).
# Usage: [FUZZ_RUNS=N] fuzz/run.sh BUILD_DIR TARGET [SECONDS]   (exit 77: target not built)
set -euo pipefail
build=$1 target=$2 seconds=${3:-10}
[ -n "$seconds" ] || seconds=10
src=$(cd "$(dirname "$0")" && pwd)
bin=$build/fuzz/$target
[ -x "$bin" ] || { echo "SKIPPED: $target not built (make fuzz-smoke builds it with clang)"; exit 77; }
extra=()
case $target in
  fuzz_threads|fuzz_asyncio|fuzz_objects) seeds=("$src/corpus/snapshots") ;;
  fuzz_code) seeds=("$src/corpus/snapshots" "$src/corpus/line_tables") ;;
  fuzz_proc) seeds=("$src/corpus/proc") ;;
  fuzz_elf) seeds=("$src/corpus/elf") ;;
  fuzz_http) seeds=("$src/corpus/http"); extra=(-dict="$src/http.dict") ;;
  *) echo "unknown target $target"; exit 2 ;;
esac
[ -d "$src/regressions/$target" ] && seeds+=("$src/regressions/$target")
work=$build/fuzz-corpus/$target
mkdir -p "$work" "$build/fuzz-artifacts"
opts=(-timeout=10 -rss_limit_mb=2048 -artifact_prefix="$build/fuzz-artifacts/$target-" ${extra[@]+"${extra[@]}"})
runs=()
[ -z "${FUZZ_RUNS:-}" ] || runs=(-runs="$FUZZ_RUNS")
log=$build/fuzz-artifacts/$target.log
echo "== $target: replay ${seeds[*]}"
nice -n 10 "$bin" "${opts[@]}" -runs=0 "${seeds[@]}" >"$log" 2>&1 || { tail -n 40 "$log"; exit 1; }
tail -n 2 "$log"
echo "== $target: fuzz ${seconds}s"
rc=0
nice -n 10 "$bin" "${opts[@]}" ${runs[@]+"${runs[@]}"} -max_total_time="$seconds" -print_final_stats=1 "$work" "${seeds[@]}" >"$log" 2>&1 || rc=$?
grep -E "^(stat::|#[0-9]+[[:space:]]+(INITED|DONE))|ERROR|SUMMARY|runtime error|Test unit written" "$log" || true
[ "$rc" -eq 0 ] || { echo "FAILED: $target (exit $rc), log $log"; tail -n 60 "$log"; }
exit "$rc"
