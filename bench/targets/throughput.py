"""Throughput benchmark target for pyprofd (Python 3.8+, standard library only).

usage: python throughput.py [--depth D] [--seconds S] [--every MS]

Repeats a fixed unit of pure-Python work at the bottom of a D-deep stack for S
seconds and prints, every MS milliseconds, one line "T COUNT CPU": T is
time.monotonic() (CLOCK_MONOTONIC, the same clock as the driver's), COUNT the
cumulative number of work units done and CPU this thread's CPU time so far
(time.thread_time()). A driver interpolates COUNT at the edges
of its own time windows (profiler ON / OFF) and compares the rates. The first
line is "ready", printed when the work starts.
"""
import argparse
import sys
import time


def unit(seed):
    # One work unit: a small loop of arithmetic and a call (so the frame stack moves).
    x = seed
    for i in range(64):
        x = step(x, i)
    return x


def step(x, i):
    return (x * 33 + i) & 0xFFFFF


def work(seconds, every):
    out = sys.stdout
    now = time.monotonic()
    end = now + seconds
    next_report = now
    count = 0
    x = 1
    out.write("ready\n")
    while True:
        for _ in range(50):
            x = unit(x)
        count += 50
        now = time.monotonic()
        if now >= next_report:
            out.write("%.6f %d %.6f\n" % (now, count, time.thread_time()))
            out.flush()
            next_report = now + every
            if now >= end:
                return x


def descend(level, seconds, every):
    if level <= 1:
        return work(seconds, every)
    return descend(level - 1, seconds, every)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--depth", type=int, default=20)
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--every", type=float, default=20, help="milliseconds between reports")
    a = ap.parse_args()
    sys.setrecursionlimit(max(1000, a.depth + 100))
    descend(a.depth, a.seconds, a.every / 1000.0)


if __name__ == "__main__":
    main()
