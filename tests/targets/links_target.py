"""Target for test_async's await-link tests: parents that wait on children through
something other than a direct await. Every child sleeps; names tell who is who:
  wait-parent   asyncio.wait([wait-0, wait-1])
  ac-parent     asyncio.as_completed([ac-0, ac-1])
  ex-parent     loop.run_in_executor(None, blocking): the executor thread sleeps in blocking()
  tg-parent     (3.11+) asyncio.TaskGroup with tg-a and tg-b, which both await tg-shared
  to-parent     (3.11+) awaits to-child inside asyncio.timeout()
  anyio-parent  (where anyio imports) an anyio task group running anyio-a and anyio-b
LINKS_SPIN=1: the children (and the executor thread) burn CPU in 5 ms slices between
awaits instead of sleeping, so that in cpu mode each of them is at times the running task.
Writes "ready" to READY_FD once every task waits; runs until killed or argv[3] seconds."""
import asyncio
import os
import sys
import time

SPIN = os.environ.get("LINKS_SPIN") == "1"


def burn(seconds):
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


async def leaf(seconds):
    if not SPIN:
        await asyncio.sleep(seconds)
        return
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        burn(0.005)
        await asyncio.sleep(0)


async def waits_on(task):
    await task


async def wait_parent(seconds):
    children = [asyncio.create_task(leaf(seconds), name="wait-%d" % i) for i in range(2)]
    await asyncio.wait(children)


async def ac_parent(seconds):
    children = [asyncio.create_task(leaf(seconds), name="ac-%d" % i) for i in range(2)]
    for next_done in asyncio.as_completed(children):
        await next_done


def blocking(seconds):
    (burn if SPIN else time.sleep)(seconds)


async def ex_parent(seconds):
    await asyncio.get_running_loop().run_in_executor(None, blocking, seconds)


async def tg_parent(seconds):
    shared = asyncio.create_task(leaf(seconds), name="tg-shared")
    async with asyncio.TaskGroup() as tg:
        tg.create_task(waits_on(shared), name="tg-a")
        tg.create_task(waits_on(shared), name="tg-b")


async def to_parent(seconds):
    async with asyncio.timeout(seconds * 2):
        await asyncio.create_task(leaf(seconds), name="to-child")


async def anyio_parent(seconds):
    import anyio

    async def child(name):
        asyncio.current_task().set_name(name)
        await leaf(seconds)

    async with anyio.create_task_group() as tg:
        tg.start_soon(child, "anyio-a")
        tg.start_soon(child, "anyio-b")


def parents():
    out = [(wait_parent, "wait-parent"), (ac_parent, "ac-parent"), (ex_parent, "ex-parent")]
    if hasattr(asyncio, "TaskGroup"):
        out += [(tg_parent, "tg-parent"), (to_parent, "to-parent")]
    try:
        import anyio  # noqa: F401
        out.append((anyio_parent, "anyio-parent"))
    except ImportError:
        pass
    return out


async def main(ready_fd, seconds):
    tasks = [asyncio.create_task(f(seconds), name=name) for f, name in parents()]
    await asyncio.sleep(0.2)
    if ready_fd >= 0:
        os.write(ready_fd, b"ready\n")
    await asyncio.gather(*tasks)


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), float(sys.argv[3]) if len(sys.argv) > 3 else 30))
