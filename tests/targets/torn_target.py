# Programs whose stacks change as fast as Python can change them, for the torn-stack
# tests. Usage: python torn_target.py READY_FD WAIT_FD MODE SECONDS   (FDs may be -1)
#   recurse   recurse(20) in a loop: frames are pushed and freed all the time
#   threads   four threads doing the same at once
#   churn     generators started and dropped, exceptions raised and caught
# Every real stack has <module> at its root; a sample that does not is torn.
import os
import sys
import threading
import time


def recurse(x):
    if x == 0:
        return
    recurse(x - 1)


def recurse_loop(end):
    while time.monotonic() < end:
        recurse(20)


def numbers(n):
    for i in range(n):
        yield i


def fail(depth):
    if depth == 0:
        raise ValueError("deep")
    fail(depth - 1)


def churn_loop(end):
    while time.monotonic() < end:
        sum(numbers(3))
        list(x * 2 for x in numbers(4))
        try:
            fail(5)
        except ValueError:
            pass


def threads_loop(end):
    workers = [threading.Thread(target=recurse_loop, args=(end,), name="rec-%d" % i) for i in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()


def main():
    ready_fd, wait_fd, mode, seconds = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], float(sys.argv[4])
    end = time.monotonic() + seconds
    if ready_fd >= 0:
        os.write(ready_fd, b"ready\n")
    {"recurse": recurse_loop, "threads": threads_loop, "churn": churn_loop}[mode](end)


if __name__ == "__main__":
    main()
