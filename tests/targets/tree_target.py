# A process tree for pyprofd's --subprocesses test. Usage:
#   python tree_target.py READY_FD WAIT_FD
# The parent starts Python children "alpha" and "beta", writes their pids as JSON to
# READY_FD, then waits for a byte (or EOF) on WAIT_FD; 1.5 s later it kills beta and
# starts "gamma" in its place, and writes gamma's pid to READY_FD. Children burn CPU
# in child_<name>() until their parent is gone.
import json
import os
import subprocess
import sys
import time


def burn_until_orphaned(parent):
    while os.getppid() == parent:
        end = time.thread_time() + 0.002
        while time.thread_time() < end:
            pass


def child_alpha(parent):
    burn_until_orphaned(parent)


def child_beta(parent):
    burn_until_orphaned(parent)


def child_gamma(parent):
    burn_until_orphaned(parent)


def start(name):
    return subprocess.Popen([sys.executable, __file__, "child", name, str(os.getpid())])


def parent(ready_fd, wait_fd):
    children = {"alpha": start("alpha"), "beta": start("beta")}
    try:
        os.write(ready_fd, (json.dumps({k: p.pid for k, p in children.items()}) + "\n").encode())
        os.read(wait_fd, 1)
        time.sleep(1.5)  # the schedule under test: beta lives 1.5 s after "go"
        children["beta"].kill()
        children["beta"].wait()
        children["gamma"] = start("gamma")
        os.write(ready_fd, (json.dumps({"gamma": children["gamma"].pid}) + "\n").encode())
        while True:
            time.sleep(1)
    finally:
        for p in children.values():
            if p.poll() is None:
                p.kill()
                p.wait()


if __name__ == "__main__":
    if sys.argv[1] == "child":
        globals()["child_" + sys.argv[2]](int(sys.argv[3]))
    else:
        parent(int(sys.argv[1]), int(sys.argv[2]))
