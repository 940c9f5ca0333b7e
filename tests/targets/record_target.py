# Targets for pyprofd's record tests. Usage:
#   python record_target.py READY_FD WAIT_FD MODE [ARGS]    (FDs may be -1: none)
# It writes "ready" to READY_FD once its work has started. MODES:
#   ratio SECONDS       heavy() burns 3 ms of CPU for every 1 ms light() burns, for SECONDS
#   recurse SECONDS     CPU work at the bottom of a 200-deep recursion
#   threads SECONDS     a busy thread (spin) and a sleeping thread (sleeper)
#   bursts SECONDS      burn() runs 4 ms, then rest() sleeps 2 ms: a request handler's rhythm
#   new_threads SECONDS an idle main thread that every 1.2 s starts a thread spinning 0.4 s
#   forever             CPU work until killed or WAIT_FD closes
#   exit CODE           a short burst of work, then exit with CODE
import os
import sys
import threading
import time


def spin_cpu(ms):
    end = time.thread_time() + ms / 1000.0
    while time.thread_time() < end:
        pass


# heavy and light burn CPU in their own bodies (time.thread_time is C code, not a
# Python frame), so their tottime is their own CPU time.
def heavy():
    end = time.thread_time() + 0.003
    while time.thread_time() < end:
        pass


def light():
    end = time.thread_time() + 0.001
    while time.thread_time() < end:
        pass


def ratio(seconds):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        heavy()
        light()


def recurse(n, end):
    if n == 0:
        while time.monotonic() < end:
            spin_cpu(1)
        return
    recurse(n - 1, end)


def spin(end):
    while time.monotonic() < end:
        spin_cpu(1)


def sleeper(seconds):
    time.sleep(seconds)


def threads(seconds):
    end = time.monotonic() + seconds
    t1 = threading.Thread(target=spin, args=(end,), name="spinner")
    t2 = threading.Thread(target=sleeper, args=(seconds,), name="sleeper")
    t1.start()
    t2.start()
    t1.join()
    t2.join()


def burn():
    end = time.monotonic() + 0.004
    while time.monotonic() < end:
        pass


def rest():
    time.sleep(0.002)


def bursts(seconds):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        burn()
        rest()


def new_threads(seconds):
    # Slots of 1.2 s from the start, whatever the thread start and join cost: any 4 s
    # holds at least 1.2 s of spinning.
    start = time.monotonic()
    for slot in range(1, int(seconds / 1.2) + 1):
        time.sleep(max(0.0, start + slot * 1.2 - 0.4 - time.monotonic()))
        t = threading.Thread(target=spin, args=(start + slot * 1.2,), name="short")
        t.start()
        t.join()


def forever(wait_fd):
    # Work until the test closes the wait pipe (or kills us).
    import select
    while not select.select([wait_fd], [], [], 0)[0]:
        spin_cpu(5)


def main():
    ready_fd, wait_fd, mode = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    arg = sys.argv[4] if len(sys.argv) > 4 else "0"
    if ready_fd >= 0:  # -1: launched by `pyprofd record -- ...`, nobody waits
        os.write(ready_fd, b"ready\n")
    if mode == "ratio":
        ratio(float(arg))
    elif mode == "recurse":
        recurse(200, time.monotonic() + float(arg))
    elif mode == "threads":
        threads(float(arg))
    elif mode == "bursts":
        bursts(float(arg))
    elif mode == "new_threads":
        new_threads(float(arg))
    elif mode == "forever":
        forever(wait_fd)
    elif mode == "exit":
        spin_cpu(200)
        sys.exit(int(arg))


if __name__ == "__main__":
    main()
