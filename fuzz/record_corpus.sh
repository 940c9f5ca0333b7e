#!/usr/bin/env bash
# Records the snapshot seeds (fuzz/corpus/snapshots) from live interpreters running
# tests/targets/asyncio_target.py: pyenv's newest 3.8-3.13 and Debian's python3.11, in
# the target's modes. A missing interpreter is skipped by name.
# Usage: fuzz/record_corpus.sh BUILD_DIR   (BUILD_DIR holds fuzz/record_snapshot)
set -uo pipefail
build=$1
src=$(cd "$(dirname "$0")/.." && pwd)
out=$src/fuzz/corpus/snapshots
rec=$build/fuzz/record_snapshot
root=${PYENV_ROOT:-$HOME/.pyenv}
mkdir -p "$out"
record() {  # label python mode
  local label=$1 py=$2 mode=$3 tmp pid
  [ -x "$py" ] || { echo "skipped: $label (no $py)"; return; }
  tmp=$(mktemp)
  "$py" "$src/tests/targets/asyncio_target.py" 3 "$mode" 3>"$tmp" &
  pid=$!
  for _ in $(seq 100); do [ -s "$tmp" ] && break; sleep 0.1; done
  if [ -s "$tmp" ]; then "$rec" "$pid" "$out/$label-$mode.snap"; else echo "no report: $label $mode"; fi
  kill "$pid"; wait "$pid" 2>/dev/null; rm -f "$tmp"
}
for minor in 8 9 10 11 12 13; do
  py=$(ls -d "$root"/versions/3.$minor.*/bin/python3.$minor 2>/dev/null | sort -V | tail -n 1)
  for mode in c py; do record "py3.$minor" "${py:-/nonexistent/python3.$minor}" $mode; done
  [ "$minor" -ge 12 ] && record "py3.$minor" "$py" eager
done
record debian3.11 /usr/bin/python3.11 c
record debian3.11 /usr/bin/python3.11 uvloop
