#!/usr/bin/env python3
"""Per-sample cost of `record --native` vs plain at depth 50 (issue 19).

usage: bench/native_bench.py --build BUILD_DIR [--seconds 10] [--rounds 3] [--interpreters P1,P2,...]

For each interpreter: bench/targets/deep.py 50 spins 50 Python frames deep; pyprofd
records it for --seconds at 100 Hz, plain and with --native, alternating, --rounds
times. The cost is pyprofd's own CPU per sample, from its summary line ("us per
sample"); reported as median [min-max] and the ratio of the medians. Also prints the
--native summary (merged / torn / without a copy). Every process started here is
ended by its PID."""
import argparse
import os
import re
import signal
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
DEEP = os.path.join(HERE, "targets", "deep.py")
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests", "integration"))
import common  # noqa: E402

DEFAULT = "py3.8,py3.10,py3.11,py3.12,py3.13,debian3.11,sid3.13,sid3.14,sid3.15"


def record(pyprofd, pid, seconds, native):
    args = [pyprofd, "record", "--pid", str(pid), "--duration", str(seconds), "--rate", "100", "-o", "/dev/null",
            "--format", "collapsed"] + (["--native"] if native else [])
    err = subprocess.run(args, capture_output=True, text=True, timeout=seconds + 60).stderr
    m = re.search(r"([\d.]+) us per sample", err)
    if not m:
        raise RuntimeError(err)
    n = re.search(r"native stacks: .*", err)
    return float(m.group(1)), n.group(0) if n else ""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", required=True)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--interpreters", default=DEFAULT)
    a = ap.parse_args()
    pyprofd = os.path.join(a.build, "pyprofd")
    print("| interpreter | plain us/sample | --native us/sample | ratio | --native summary (last round) |")
    print("|---|---|---|---|---|")
    for name in a.interpreters.split(","):
        python = common.find_interpreter(name)
        if not python:
            print("| %s | not installed | | | |" % name)
            continue
        target = subprocess.Popen([python, DEEP, "50", "--max-seconds", str(a.rounds * a.seconds * 3 + 60)],
                                  stdout=subprocess.PIPE, text=True)
        try:
            target.stdout.readline()  # "ready PID"
            plain, native, summary = [], [], ""
            for _ in range(a.rounds):
                plain.append(record(pyprofd, target.pid, a.seconds, False)[0])
                cost, summary = record(pyprofd, target.pid, a.seconds, True)
                native.append(cost)
        finally:
            os.kill(target.pid, signal.SIGKILL)
            target.wait()
        mp, mn = statistics.median(plain), statistics.median(native)
        print("| %s | %.1f [%.1f-%.1f] | %.1f [%.1f-%.1f] | %.2fx | %s |" % (
            name, mp, min(plain), max(plain), mn, min(native), max(native), mn / mp, summary), flush=True)


if __name__ == "__main__":
    main()
