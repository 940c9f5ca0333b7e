"""Target for test_async's loop tests: which thread each pending task is shown on.
The main thread runs a loop with tasks main-0..9; thread "loop-thread" runs a second loop
with 200 tasks worker-0..199; a third loop, never run, holds the pending task "orphan".
Every task sleeps; one more main-loop task is named "\x00\x01\x02" (shown as "<task ?>"). When in position it writes one JSON line to READY_FD:
{"main": main thread's native id, "worker": loop-thread's native id}.
Runs until WAIT_FD is closed or the time (argv[3], seconds) is up."""
import asyncio
import json
import os
import sys
import threading


async def idle(seconds):
    await asyncio.sleep(seconds)


def run_worker_loop(ready, info, seconds):
    async def run():
        loop = asyncio.get_running_loop()
        tasks = [loop.create_task(idle(seconds)) for _ in range(200)]
        for i, t in enumerate(tasks):
            t.set_name("worker-%d" % i)
        info["worker"] = threading.get_native_id()
        ready.set()
        await asyncio.gather(*tasks)
    asyncio.run(run())


async def main(ready_fd, seconds):
    ready, info = threading.Event(), {}
    threading.Thread(target=run_worker_loop, args=(ready, info, seconds), name="loop-thread", daemon=True).start()
    orphan_loop = asyncio.new_event_loop()
    orphan = orphan_loop.create_task(idle(seconds))
    orphan.set_name("orphan")
    loop = asyncio.get_running_loop()
    tasks = [loop.create_task(idle(seconds)) for _ in range(10)]
    for i, t in enumerate(tasks):
        t.set_name("main-%d" % i)
    garbled = loop.create_task(idle(seconds))
    garbled.set_name("\x00\x01\x02")
    await asyncio.sleep(0.05)
    ready.wait(30)
    if ready_fd >= 0:
        os.write(ready_fd, (json.dumps({"main": threading.get_native_id(), "worker": info["worker"]}) + "\n").encode())
    await asyncio.gather(*tasks)
    orphan.cancel()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), float(sys.argv[3]) if len(sys.argv) > 3 else 30))
