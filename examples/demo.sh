#!/usr/bin/env bash
# `make demo`: record a bundled example program with pyprofd and show what it found.
# (The full gunicorn/FastAPI scenario replaces this once that issue is done.)
set -euo pipefail
PYPROFD=${1:-build/pyprofd}
cd "$(dirname "$0")/.."
mkdir -p demo
echo "== pyprofd record -o demo/profile.stats -- python3 examples/version_check.py 5"
"$PYPROFD" record --rate 200 -o demo/profile.stats -- /usr/bin/python3 examples/version_check.py 5
echo
echo "== top 10 by tottime (python3 -m pstats)"
/usr/bin/python3 - <<'PY'
import pstats
pstats.Stats("demo/profile.stats").sort_stats("tottime").print_stats(10)
PY
echo "Open it with: python3 -m pstats demo/profile.stats   (or snakeviz / gprof2dot -f pstats)"
