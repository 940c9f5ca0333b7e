#!/usr/bin/env bash
# `make demo`: the scenario pyprofd is for. A FastAPI service under gunicorn (2
# UvicornWorkers, Debian's python3) serves slowly because a tracing helper calls
# importlib.metadata.version() on every span. We load it with ab, record the whole
# process tree with pyprofd (--subprocesses --async), show what it found, then
# restart the service with the lookup cached and compare requests per second.
#
# usage: examples/demo.sh [PYPROFD] [--quick]     (--quick: shorter load, for tests)
set -euo pipefail
PYPROFD=$(realpath "${1:-build/pyprofd}")
QUICK=${2:-}
cd "$(dirname "$0")/.."
OUT=demo
mkdir -p "$OUT"
PORT=${DEMO_PORT:-$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')}
RECORD_SECONDS=15; LOAD_SECONDS=20; AFTER_SECONDS=10; CONCURRENCY=32
if [ "$QUICK" = "--quick" ]; then RECORD_SECONDS=5; LOAD_SECONDS=7; AFTER_SECONDS=4; fi

PIDS=()
cleanup() {
  for p in "${PIDS[@]:-}"; do
    [ -n "$p" ] && kill "$p" 2>/dev/null && wait "$p" 2>/dev/null || true
  done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

start_service() {  # $1: extra environment assignment or ""
  # Log level info: each worker logs "Application startup complete" once its app is
  # imported, so the recording starts on a serving tree, not on workers importing FastAPI.
  env $1 /usr/bin/python3 -m gunicorn -w 2 -k uvicorn.workers.UvicornWorker -b "127.0.0.1:$PORT" \
    --chdir examples --log-level info app:app > "$OUT/gunicorn.log" 2>&1 &
  SERVICE=$!
  PIDS+=("$SERVICE")
  for _ in $(seq 1 600); do  # bounded wait (60 s) for both workers' apps
    if [ "$(grep -c 'Application startup complete' "$OUT/gunicorn.log")" -ge 2 ]; then return 0; fi
    if ! kill -0 "$SERVICE" 2>/dev/null; then break; fi
    sleep 0.1
  done
  echo "demo: the service did not start; see $OUT/gunicorn.log" >&2
  return 1
}

stop_service() {
  kill -TERM "$SERVICE" 2>/dev/null || true
  wait "$SERVICE" 2>/dev/null || true
}

rps() {  # requests per second from ab's report
  awk '/Requests per second/ {print $4}' "$1"
}

echo "== starting the service (gunicorn, 2 UvicornWorkers) on 127.0.0.1:$PORT"
start_service ""
echo "== load: ab -c $CONCURRENCY -t $LOAD_SECONDS; recording ${RECORD_SECONDS}s of it with pyprofd"
ab -q -k -c "$CONCURRENCY" -t "$LOAD_SECONDS" -n 1000000 -s 10 "http://127.0.0.1:$PORT/chat?q=hi" > "$OUT/ab-before.txt" 2>&1 &
LOAD=$!
PIDS+=("$LOAD")
"$PYPROFD" record --pid "$SERVICE" --subprocesses --async --top 0 \
  -o "$OUT/profile.stats" -o "$OUT/profile.pb.gz" -o "$OUT/callgraph.png" &
RECORDER=$!
PIDS+=("$RECORDER")
sleep "$RECORD_SECONDS"
kill -INT "$RECORDER"
wait "$RECORDER"
wait "$LOAD" || true
BEFORE=$(rps "$OUT/ab-before.txt")
stop_service

echo
echo "== top 10 functions by self time (python3 -m pstats $OUT/profile.stats)"
/usr/bin/python3 - "$OUT/profile.stats" <<'PY'
import pstats, sys
pstats.Stats(sys.argv[1]).sort_stats("tottime").print_stats(10)
PY
echo "Call graph picture: $OUT/callgraph.png"
echo "Open the profile with:"
echo "  python3 -m pstats $OUT/profile.stats          (then: sort tottime / stats 20 / callers version)"
echo "  gprof2dot -f pstats $OUT/profile.stats | dot -Tpng -o graph.png   (or xdot)"
echo "  snakeviz $OUT/profile.stats"
echo "  go tool pprof -top $OUT/profile.pb.gz   |   go tool pprof -http=: $OUT/profile.pb.gz"

echo
echo "== the fix: cache the version lookup (DEMO_CACHE_VERSION=1), same load"
start_service "DEMO_CACHE_VERSION=1"
ab -q -k -c "$CONCURRENCY" -t "$AFTER_SECONDS" -n 1000000 -s 10 "http://127.0.0.1:$PORT/chat?q=hi" > "$OUT/ab-after.txt" 2>&1 || true
AFTER=$(rps "$OUT/ab-after.txt")
stop_service
echo "requests per second: before $BEFORE, after $AFTER"
echo "$BEFORE $AFTER" > "$OUT/rps.txt"
