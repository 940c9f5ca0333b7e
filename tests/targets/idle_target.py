# A minimal target that runs on any Python (2.7 too): signals ready, then blocks
# until the wait pipe closes. Usage: python idle_target.py READY_FD WAIT_FD
import os
import sys


def idle(ready_fd, wait_fd):
    os.write(ready_fd, b"ready\n")
    return os.read(wait_fd, 1)


if __name__ == "__main__":
    idle(int(sys.argv[1]), int(sys.argv[2]))
