#!/usr/bin/env python3
"""Per-sample cost of `record --native` vs plain at depth 50 (issue 19).

usage: bench/native_bench.py --build BUILD_DIR [--seconds 10] [--rounds 3] [--interpreters P1,P2,...]
       bench/native_bench.py --build BUILD_DIR --slowdown [--plain] [--window 4] [--rounds 4] [--interpreters ...]

For each interpreter: bench/targets/deep.py 50 spins 50 Python frames deep; pyprofd
records it at 100 Hz, plain and with --native, alternating, --rounds times, each for
1 s and for --seconds. From its summary lines (own CPU, samples):
  whole run: own CPU / samples of the --seconds run (start-up, attach, writing included);
  steady:    (CPU(long) - CPU(1 s)) / (samples(long) - samples(1 s)), the cost of one more
             sample once started (--native's start-up: ELF files, DWARF, perf rings).
Medians [min-max] and the ratio of the medians. Also prints the last --native summary
(merged / torn / without a copy). Every process started here is ended by its PID.

--slowdown: the target's throughput with `record --native` at 100 Hz ON vs OFF, in
alternating windows of --window seconds (bench/targets/throughput.py --depth 20): work
units per second of the target thread's own CPU time (robust on a shared machine: the
kernel's perf copies are charged to the thread) and per wall second."""
import argparse
import os
import re
import signal
import statistics
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
DEEP = os.path.join(HERE, "targets", "deep.py")
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests", "integration"))
import common  # noqa: E402

DEFAULT = "py3.8,py3.10,py3.11,py3.12,py3.13,debian3.11,sid3.13,sid3.14,sid3.15"


def record(pyprofd, pid, seconds, native):
    args = [pyprofd, "record", "--pid", str(pid), "--duration", str(seconds), "--rate", "100", "-o", "/dev/null",
            "--format", "collapsed"] + (["--native"] if native else [])
    err = subprocess.run(args, capture_output=True, text=True, timeout=seconds + 60).stderr
    cpu = re.search(r"own CPU ([\d.]+) s", err)
    samples = re.search(r"recorded [\d.]+ s: (\d+) samples", err)
    if not cpu or not samples:
        raise RuntimeError(err)
    n = re.search(r"native stacks: .*", err)
    return float(cpu.group(1)), int(samples.group(1)), n.group(0) if n else ""


def costs(pyprofd, pid, seconds, native):
    """(whole-run us/sample, steady us/sample, native summary)."""
    c1, n1, _ = record(pyprofd, pid, 1, native)
    c2, n2, summary = record(pyprofd, pid, seconds, native)
    return 1e6 * c2 / max(n2, 1), 1e6 * (c2 - c1) / max(n2 - n1, 1), summary


def cell(values):
    return "%.0f [%.0f-%.0f]" % (statistics.median(values), min(values), max(values))


def slowdown(a, pyprofd, name, python):
    """(cpu ratio median, wall ratio median) of ON windows against the OFF windows."""
    secs = a.rounds * a.window * 2 + 30
    target = subprocess.Popen([python, os.path.join(HERE, "targets", "throughput.py"), "--depth", "20",
                               "--seconds", str(secs), "--every", "20"], stdout=subprocess.PIPE, text=True)
    lines = []
    reader = threading.Thread(target=lambda: lines.extend(iter(target.stdout.readline, "")), daemon=True)
    try:
        if target.stdout.readline().strip() != "ready":
            raise RuntimeError("throughput target did not start")
        reader.start()
        windows = []
        for _ in range(a.rounds):
            for on in (False, True):
                t0 = time.monotonic()
                if on:
                    record(pyprofd, target.pid, a.window, not a.plain)
                else:
                    time.sleep(a.window)
                windows.append((on, t0, time.monotonic()))
    finally:
        os.kill(target.pid, signal.SIGKILL)
        target.wait()
    reports = [tuple(map(float, l.split())) for l in lines if len(l.split()) == 3]

    def at(t):  # the report nearest before t: (count, cpu)
        before = [r for r in reports if r[0] <= t]
        return before[-1] if before else reports[0]

    rates = []
    for on, t0, t1 in windows:
        (s0, c0, u0), (s1, c1, u1) = at(t0), at(t1)
        rates.append((on, (c1 - c0) / max(u1 - u0, 1e-9), (c1 - c0) / max(s1 - s0, 1e-9)))
    off_cpu = statistics.median(r[1] for r in rates if not r[0])
    off_wall = statistics.median(r[2] for r in rates if not r[0])
    on_cpu = statistics.median(r[1] for r in rates if r[0])
    on_wall = statistics.median(r[2] for r in rates if r[0])
    print("| %s | %.3f | %.3f |" % (name, on_cpu / off_cpu, on_wall / off_wall), flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", required=True)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--interpreters", default=DEFAULT)
    ap.add_argument("--slowdown", action="store_true")
    ap.add_argument("--window", type=float, default=4)
    ap.add_argument("--plain", action="store_true", help="--slowdown of plain record (the baseline)")
    a = ap.parse_args()
    pyprofd = os.path.join(a.build, "pyprofd")
    if a.slowdown:
        print("| interpreter | ON/OFF work per target CPU second | ON/OFF work per wall second |")
        print("|---|---|---|")
        for name in a.interpreters.split(","):
            python = common.find_interpreter(name)
            if python:
                slowdown(a, pyprofd, name, python)
        return
    print("| interpreter | plain whole / steady us/sample | --native whole / steady us/sample | ratio whole / steady | --native summary (last round) |")
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
            pw, ps, nw, ns, summary = [], [], [], [], ""
            for _ in range(a.rounds):
                w, s_, _ = costs(pyprofd, target.pid, a.seconds, False)
                pw.append(w)
                ps.append(s_)
                w, s_, summary = costs(pyprofd, target.pid, a.seconds, True)
                nw.append(w)
                ns.append(s_)
        finally:
            os.kill(target.pid, signal.SIGKILL)
            target.wait()
        med = statistics.median
        print("| %s | %s / %s | %s / %s | %.2fx / %.2fx | %s |" % (
            name, cell(pw), cell(ps), cell(nw), cell(ns), med(nw) / med(pw), med(ns) / med(ps), summary), flush=True)


if __name__ == "__main__":
    main()
