#!/usr/bin/env bash
# pyprofd benchmarks (issue 7): `make bench` runs `bash bench/run.sh $(BUILD)`.
#   bash bench/run.sh BUILD_DIR [--quick] [--only floor,1,2,3,5,6,perf]
# --quick: short runs, one repetition: a smoke check (a couple of minutes), not numbers to quote.
# Prints the tables; writes BUILD_DIR/bench-results/{tables.md,results.json,perf-*.data*}.
# Also builds and runs micro_bench (Google Benchmark) when CMake found the library.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
build="${1:?usage: bench/run.sh BUILD_DIR [--quick] [--only ITEMS]}"
shift
quick=0
for a in "$@"; do [[ "$a" == "--quick" ]] && quick=1; done

[[ -x "$build/pyprofd" ]] || { echo "bench: $build/pyprofd not built (make build)" >&2; exit 1; }
if [[ "$(id -u)" != 0 ]] && [[ "$(cat /proc/sys/kernel/yama/ptrace_scope 2>/dev/null || echo 0)" != 0 ]]; then
  echo "bench: reading other processes needs root or CAP_SYS_PTRACE" >&2
fi

py=/usr/bin/python3
[[ -x "$py" ]] || py="$(command -v python3)"

# Micro-benchmarks of the hot paths, on in-memory data (no target process).
if cmake --build "$build" --target micro_bench -j "$(nproc)" >"$build/micro_bench.build.log" 2>&1; then
  echo "### micro_bench (Google Benchmark)"
  echo
  echo '```'
  if [[ $quick == 1 ]]; then
    timeout 300 "$build/micro_bench" --benchmark_min_time=0.05 2>&1 | grep -v '^\*\*\*'
  else
    timeout 600 "$build/micro_bench" --benchmark_repetitions=3 --benchmark_report_aggregates_only=true 2>&1 |
      grep -v '^\*\*\*'
  fi
  echo '```'
  echo
else
  echo "bench: micro_bench not built (Google Benchmark not found by CMake, or a compile error:" \
       "see $build/micro_bench.build.log): skipped" >&2
fi

exec timeout 3600 "$py" "$here/bench.py" --build "$build" "$@"
