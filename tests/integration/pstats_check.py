"""Reads a pstats file with a given interpreter's own pstats module and prints it as
JSON, so tests can check files with every version's reader. Usage:
    python pstats_check.py FILE   ->  {"total_tt": float, "stats": [[file, line, name, cc, nc, tt, ct, callers], ...]}
where callers is [[file, line, name, nc, cc, tt, ct], ...]."""
import json
import pstats
import sys

s = pstats.Stats(sys.argv[1])
out = []
for (fn, line, name), (cc, nc, tt, ct, callers) in s.stats.items():
    out.append([fn, line, name, cc, nc, tt, ct,
                [[c[0], c[1], c[2]] + list(v) for c, v in callers.items()]])
print(json.dumps({"total_tt": s.total_tt, "stats": out}))
