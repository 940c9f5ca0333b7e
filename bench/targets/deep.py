"""CPU-bound benchmark target for pyprofd (Python 3.8+, standard library only).

usage: python deep.py DEPTH [--threads N] [--max-seconds S]

The main thread recurses DEPTH pure-Python frames deep (DEPTH counts the frames
below the module: depth 1 = the spinning function itself) and spins in pure
Python at the bottom. With --threads N, N extra threads each sit idle (blocked
in Event.wait) at the bottom of their own DEPTH-deep stack, so a wall-mode
profiler samples N + 1 stacks per tick. Prints "ready PID" on stdout once every
stack is in place, then runs until killed or for at most --max-seconds (a
bound so a crashed driver never leaves it behind).
"""
import argparse
import sys
import threading
import time


def spin(deadline):
    # The bottom frame: pure-Python arithmetic, a clock check every 200k turns.
    x = 0
    n = 0
    while True:
        x = (x * 31 + n) & 0xFFFF
        n += 1
        if n % 200000 == 0 and time.monotonic() > deadline:
            return x


def descend(level, bottom, *args):
    if level <= 1:
        return bottom(*args)
    return descend(level - 1, bottom, *args)


def idle_bottom(started, stop):
    started.release()
    stop.wait()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("depth", type=int)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--max-seconds", type=float, default=900)
    a = ap.parse_args()
    sys.setrecursionlimit(max(1000, a.depth + 100))
    deadline = time.monotonic() + a.max_seconds
    stop = threading.Event()
    started = threading.Semaphore(0)
    threads = [threading.Thread(target=descend, args=(a.depth, idle_bottom, started, stop),
                                name="idle-%d" % i, daemon=True) for i in range(a.threads)]
    for t in threads:
        t.start()
    for _ in threads:
        started.acquire()

    def announce():
        print("ready", flush=True)
        return deadline

    # "ready" is printed from inside the DEPTH-deep stack, just before spinning.
    descend(a.depth, lambda: spin(announce()))
    stop.set()


if __name__ == "__main__":
    main()
