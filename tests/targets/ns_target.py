# A target for the pid-namespace (container) tests, started under
# `unshare --pid --fork --mount-proc`: two named threads burn CPU in ns_hot(), the
# main thread waits. Prints "ready PID TID TID" as its own namespace numbers them.
# Usage: python ns_target.py TAG [child]   (TAG makes the command line unique; with
# "child" it also starts a copy of itself, with the same interpreter, whose threads are
# named ns-child-N, and prints its pid after the workers')
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
    prefix = "ns-child" if sys.argv[2:] == ["is-child"] else "ns-worker"
    for i in range(2):
        threading.Thread(target=worker, args=(ids, started), name="%s-%d" % (prefix, i), daemon=True).start()
        started.acquire()
    child = ""
    if sys.argv[2:] == ["child"]:
        import subprocess
        child = " %d" % subprocess.Popen([sys.executable, __file__, sys.argv[1], "is-child"]).pid
    sys.stdout.write("ready %d %s %s%s\n" % (os.getpid(), " ".join(map(str, ids)), sys.argv[1], child))
    sys.stdout.flush()
    while True:
        time.sleep(1)


if __name__ == "__main__":
    main()
