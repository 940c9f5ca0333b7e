# A target for the pid-namespace (container) tests, started under
# `unshare --pid --fork --mount-proc`: two named threads burn CPU in ns_hot(), the
# main thread waits. Prints "ready PID TID TID" as its own namespace numbers them.
# Usage: python ns_target.py TAG   (TAG makes the command line unique)
import os
import sys
import threading
import time


def ns_hot():
    end = time.thread_time() + 0.005
    while time.thread_time() < end:
        pass


def worker(ids, started):
    ids.append(threading.get_native_id() if hasattr(threading, "get_native_id") else 0)
    started.release()
    while True:
        ns_hot()


def main():
    ids, started = [], threading.Semaphore(0)
    for i in range(2):
        threading.Thread(target=worker, args=(ids, started), name="ns-worker-%d" % i, daemon=True).start()
        started.acquire()
    sys.stdout.write("ready %d %s %s\n" % (os.getpid(), " ".join(map(str, ids)), sys.argv[1]))
    sys.stdout.flush()
    while True:
        time.sleep(1)


if __name__ == "__main__":
    main()
