# A process tree that keeps changing, for pyprofd's vanishing-target tests. Usage:
#   python vanish_target.py READY_FD WAIT_FD
# Writes "ready" to READY_FD, then forks a child about every 10 ms; each child burns
# CPU in short_life() for 0-30 ms (a few threads of its own on some) and exits. Runs
# until killed or WAIT_FD closes.
import os
import random
import select
import sys
import threading
import time


def burn(seconds):
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass


def short_life():
    if random.random() < 0.3:
        for _ in range(3):
            threading.Thread(target=burn, args=(0.005,)).start()
    burn(random.uniform(0, 0.03))
    os._exit(0)


def main():
    ready_fd, wait_fd = int(sys.argv[1]), int(sys.argv[2])
    os.write(ready_fd, b"ready\n")
    while not select.select([wait_fd], [], [], 0.01)[0]:
        if os.fork() == 0:
            short_life()
        while True:  # reap what has exited, never block
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break


if __name__ == "__main__":
    main()
