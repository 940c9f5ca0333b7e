# Thread churn for pyprofd's churn test. Usage:
#   python churn_target.py READY_FD WAIT_FD [SPAWNERS]
# SPAWNERS threads (default 4) each start short threads one after another as fast as
# they can; every short thread runs short_work() (~0.1 ms of CPU) and ends. Writes
# "ready" to READY_FD once churning; when WAIT_FD closes it prints
# "threads N seconds S" on stdout and exits.
import os
import select
import sys
import threading
import time

count = 0
count_lock = threading.Lock()
stop = threading.Event()


def short_work():
    total = 0
    for i in range(300):
        total += i * i
    return total


def spawner():
    global count
    while not stop.is_set():
        t = threading.Thread(target=short_work)
        t.start()
        t.join()
        with count_lock:
            count += 1


def main():
    ready_fd, wait_fd = int(sys.argv[1]), int(sys.argv[2])
    spawners = int(sys.argv[3]) if len(sys.argv) > 3 else 4
    start = time.monotonic()
    threads = [threading.Thread(target=spawner, name="spawner-%d" % i) for i in range(spawners)]
    for t in threads:
        t.start()
    os.write(ready_fd, b"ready\n")
    select.select([wait_fd], [], [])
    stop.set()
    for t in threads:
        t.join()
    print("threads %d seconds %.2f" % (count, time.monotonic() - start), flush=True)


if __name__ == "__main__":
    main()
