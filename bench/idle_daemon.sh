#!/bin/bash
# Issue 14/15: the daemon's cost on idle targets alone (no attaches, no churn).
# Starts N idle Debian python3 processes (two threads each, both asleep), then runs each
# pyprofd binary as `daemon --match ... --rate 100 --max-cpu 0 --mode MODE` for SEC
# seconds (after 3 s for the attaches), REPS rounds interleaved, and prints its CPU
# (utime + stime from /proc/PID/stat) as % of one core. Ends what it started by PID.
# usage: bash bench/idle_daemon.sh N SEC REPS cpu|wall PYPROFD [PYPROFD...]
set -u
N=$1; SEC=$2; REPS=$3; MODE=$4; shift 4
LOG=$(mktemp)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; rm -f "$LOG"' EXIT
for i in $(seq "$N"); do
  /usr/bin/python3 -c "import time, threading
threading.Thread(target=time.sleep, args=(10**6,)).start()
time.sleep(10**6)  # pyprofd-idle-bench" &
  pids+=($!)
done
sleep 2
for r in $(seq "$REPS"); do for b in "$@"; do
  : > "$LOG"
  "$b" daemon --match 'pyprofd-idle-bench' --rate 100 --max-cpu 0 --mode "$MODE" --log-file "$LOG" >/dev/null 2>&1 &
  d=$!
  sleep 3
  c0=$(awk '{print $14+$15}' /proc/$d/stat)
  sleep "$SEC"
  c1=$(awk '{print $14+$15}' /proc/$d/stat)
  kill "$d"; wait "$d"
  echo "$b $MODE: $(python3 -c "print('%.2f %% of a core' % (($c1-$c0)/$(getconf CLK_TCK)/$SEC*100))"), targets $(grep -c 'attached process' "$LOG")"
done; done
