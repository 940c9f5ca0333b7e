# Targets for test_native. Usage: python native_target.py READY_FD WAIT_FD MODE [EXT_DIR]
#   zlib:  compress_loop() calls zlib.compress on a large buffer, forever
#   async: the same in an asyncio task named "compressor" (compress_task), awaited by main's task;
#          a task named "sleeper" (idle_task) waits in asyncio.sleep meanwhile
#   sleep: sleeper() sits in time.sleep
#   ext:   outer() -> pyprofd_callback.call_back (C) -> inner() -> time.sleep (EXT_DIR holds the module)
#   spin:  outer() -> call_back (C) -> spin(), a busy Python loop
import asyncio
import os
import sys
import time
import zlib


def ready(fd):
    if fd >= 0:  # -1: launched by pyprofd record, nobody waits
        os.write(fd, b"ready\n")


def compress_loop(ready_fd):
    data = os.urandom(1 << 16) * 64  # 4 MiB, half of it compressible
    ready(ready_fd)
    while True:
        zlib.compress(data, 6)


async def compress_task(data, ready_fd):
    ready(ready_fd)
    while True:
        zlib.compress(data, 6)
        await asyncio.sleep(0)


async def idle_task():
    await asyncio.sleep(1000)


async def compress_main(ready_fd):
    data = os.urandom(1 << 16) * 64
    idle = asyncio.create_task(idle_task(), name="sleeper")
    await asyncio.create_task(compress_task(data, ready_fd), name="compressor")
    await idle


def sleeper(ready_fd):
    ready(ready_fd)
    while True:
        time.sleep(100)


def inner(ready_fd):
    ready(ready_fd)
    while True:
        time.sleep(100)


def spin(ready_fd):
    ready(ready_fd)
    n = 0
    while True:
        n += 1


def outer(ext, leaf, ready_fd):
    ext.call_back(lambda: leaf(ready_fd))


def main():
    ready_fd, mode = int(sys.argv[1]), sys.argv[3]
    if mode == "zlib":
        compress_loop(ready_fd)
    elif mode == "async":
        asyncio.run(compress_main(ready_fd))
    elif mode == "sleep":
        sleeper(ready_fd)
    else:
        sys.path.insert(0, sys.argv[4])
        import pyprofd_callback
        outer(pyprofd_callback, inner if mode == "ext" else spin, ready_fd)


if __name__ == "__main__":
    main()
