# A long-running target for the daemon tests: burns CPU in daemon_hot() until killed.
# Usage: python daemon_target.py TAG   (TAG makes the command line unique for --match)
import sys
import time


def daemon_hot():
    end = time.thread_time() + 0.005
    while time.thread_time() < end:
        pass


def main():
    sys.stdout.write("ready %s\n" % sys.argv[1])
    sys.stdout.flush()
    while True:
        daemon_hot()


if __name__ == "__main__":
    main()
