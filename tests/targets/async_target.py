# asyncio targets for pyprofd's --async tests. Usage:
#   python async_target.py READY_FD WAIT_FD MODE [SECONDS]
# MODES:
#   workers   two gathered workers loop: await slow_io() (sleep 0.3), await fast_io() (sleep 0.1), await cpu_work() (50 ms CPU)
#   nested    task A awaits task B awaits task C; C burns CPU in leaf_work() and sleeps in turns
#   many      1,000 concurrent tasks sleeping and waking
#   churn     tasks created and finished continuously (the task set mutates while sampled)
import asyncio
import os
import sys
import time


WAITED = {"slow_io": 0.0, "fast_io": 0.0}  # the target's own measure of each coroutine's wall time


async def slow_io():
    start = time.monotonic()
    await asyncio.sleep(0.3)
    WAITED["slow_io"] += time.monotonic() - start


async def fast_io():
    start = time.monotonic()
    await asyncio.sleep(0.1)
    WAITED["fast_io"] += time.monotonic() - start


async def cpu_work():
    end = time.thread_time() + 0.05
    while time.thread_time() < end:
        pass


async def worker(end, phase):
    # Out of phase, one worker's CPU burst never delays the other's wake-up.
    await asyncio.sleep(phase)
    while time.monotonic() < end:
        await slow_io()
        await fast_io()
        await cpu_work()


async def workers(seconds):
    end = time.monotonic() + seconds
    await asyncio.gather(worker(end, 0), worker(end, 0.2))
    print("target: slow_io/fast_io wall time ratio %.4f" % (WAITED["slow_io"] / WAITED["fast_io"]), flush=True)


def leaf_work():
    end = time.thread_time() + 0.02
    while time.thread_time() < end:
        pass


async def task_c(end):
    while time.monotonic() < end:
        leaf_work()
        await asyncio.sleep(0.01)


async def task_b(end):
    await asyncio.create_task(task_c(end), name="task-C")


async def task_a(end):
    await asyncio.create_task(task_b(end), name="task-B")


async def nested(seconds):
    end = time.monotonic() + seconds
    finished = asyncio.create_task(asyncio.sleep(0), name="task-done")  # done, still referenced
    await finished
    await asyncio.create_task(task_a(end), name="task-A")


async def sleeper(i, end):
    while time.monotonic() < end:
        await asyncio.sleep(0.05 + (i % 10) * 0.01)


async def many(seconds):
    end = time.monotonic() + seconds
    await asyncio.gather(*[asyncio.create_task(sleeper(i, end), name="sleeper-%d" % i) for i in range(1000)])


async def short_lived(i):
    await asyncio.sleep(0.001 * (i % 5))
    return i


async def churn(seconds):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        await asyncio.gather(*[asyncio.create_task(short_lived(i)) for i in range(50)])


def main():
    ready_fd, mode = int(sys.argv[1]), sys.argv[3]
    seconds = float(sys.argv[4]) if len(sys.argv) > 4 else 30
    if ready_fd >= 0:
        os.write(ready_fd, b"ready\n")
    asyncio.run({"workers": workers, "nested": nested, "many": many, "churn": churn}[mode](seconds))


if __name__ == "__main__":
    main()
