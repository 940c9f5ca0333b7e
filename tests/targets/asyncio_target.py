"""Target for tests/unit/asyncio_tasks_test.cc: builds known asyncio tasks, lets them reach
their await points, then the running task "R" calls busy(), which writes one JSON report
line to the file descriptor argv[1] and blocks in os.read until the test kills it, so
every task stays put while the test reads. Runs unchanged on Python 3.8-3.13.

argv[2] (mode): "c" (C tasks), "py" (pure-Python asyncio.tasks._PyTask via a task
factory; the main task stays a C task), "uvloop", "many" ("c" plus 1,000 sleepers, the
first 500 gathered ten by ten),
"eager" (3.12+: R runs eagerly inside the main task's step, so it is only in _eager_tasks).
"""
import asyncio
import asyncio.tasks
import ctypes
import json
import os
import struct
import sys

MODE = sys.argv[2] if len(sys.argv) > 2 else "c"
OUT_FD = int(sys.argv[1])
BLOCK_R, BLOCK_W = os.pipe()  # nothing is ever written: os.read blocks forever
KEEP = []                      # the registries hold weak references only


def line_of(marker):
    with open(__file__) as f:
        for n, text in enumerate(f, 1):
            if text.rstrip().endswith("# " + marker):
                return n
    raise KeyError(marker)


async def c_leaf():
    await asyncio.sleep(3600)  # @C


async def b_mid(c):
    await c  # @B


async def a_top(b):
    await b  # @A


async def inner_sleep():
    await asyncio.sleep(3600)  # @INNER


async def middle():
    await inner_sleep()  # @MIDDLE


async def worker():
    await middle()  # @WORKER


async def gatherer(*tasks):
    await asyncio.gather(*tasks)  # @GATHER


async def shielder(inner):
    await asyncio.shield(inner)  # @SHIELD


async def timed(inner):
    await asyncio.wait_for(inner, 3600)  # @TIMED


async def grouped():
    async with asyncio.TaskGroup() as tg:  # @GROUP
        tg.create_task(inner_sleep(), name="TG1")
        await asyncio.sleep(0)


async def wait_future(fut):
    await fut  # @FUT


async def finish():
    return 1


def chain_of(task):
    """Python's own view of a suspended task's await chain, innermost first."""
    out, obj = [], task.get_coro()
    while obj is not None:
        is_coro = hasattr(obj, "cr_frame")
        frame = obj.cr_frame if is_coro else getattr(obj, "gi_frame", None)
        if frame is None:
            break
        out.append([frame.f_code.co_name, frame.f_lineno])
        obj = obj.cr_await if is_coro else getattr(obj, "gi_yieldfrom", None)
    return out[::-1]


def scan_offsets(task, values):
    """Byte offsets inside the C task object where each known pointer is stored."""
    words = struct.unpack("<40Q", ctypes.string_at(id(task), 320))
    return {k: [i * 8 for i, w in enumerate(words) if w == id(v)] for k, v in values.items()}


def busy(report):
    total = sum(i * i for i in range(10000))  # some CPU work in the running task
    data = report()
    data["total"] = total
    line = (json.dumps(data) + "\n").encode()
    # One line: the test may read the stack while os.write is returning; the line is the same.
    os.write(OUT_FD, line); os.read(BLOCK_R, 1)  # @BUSY


async def runner(report):
    busy(report)  # @RUNNER


def py_factory(loop, coro, **kw):
    return asyncio.tasks._PyTask(coro, loop=loop, **kw)


async def main():
    loop = asyncio.get_running_loop()
    main_task = asyncio.current_task()
    fut = loop.create_future()
    probe = asyncio.tasks._CTask(wait_future(fut), loop=loop, name="PROBE")
    probe.add_done_callback(print)
    if MODE == "py":
        loop.set_task_factory(py_factory)
    named = {}

    def spawn(coro, name):
        t = loop.create_task(coro)
        t.set_name(name)
        named[name] = t
        KEEP.append(t)
        return t

    c = spawn(c_leaf(), "C")
    b = spawn(b_mid(c), "B")
    spawn(a_top(b), "A")
    w1, w2 = spawn(worker(), "W1"), spawn(worker(), "W2")
    spawn(gatherer(w1, w2), "G")
    spawn(shielder(spawn(inner_sleep(), "SI")), "SO")
    spawn(timed(spawn(inner_sleep(), "WI")), "WO")
    if hasattr(asyncio, "TaskGroup"):
        spawn(grouped(), "TG")
    many = [spawn(inner_sleep(), "M%d" % i) for i in range(1000)] if MODE == "many" else []
    groups = {}  # "many": the first 500 sleepers gathered ten by ten
    for g in range(50 if many else 0):
        spawn(gatherer(*many[10 * g:10 * g + 10]), "GM%d" % g)
        groups["GM%d" % g] = ["M%d" % i for i in range(10 * g, 10 * g + 10)]
    done = spawn(finish(), "D")
    cancelled = spawn(inner_sleep(), "X")
    for _ in range(5):
        await asyncio.sleep(0)
    cancelled.cancel()
    for _ in range(5):
        await asyncio.sleep(0)
    assert done.done() and cancelled.cancelled()
    if "TG" in named:
        named["TG1"] = next(t for t in asyncio.all_tasks() if t is not main_task and t.get_name() == "TG1")
    named["PROBE"] = probe

    def report():
        spawn(inner_sleep(), "N")  # never started: the loop is blocked from now on
        running = asyncio.current_task()
        tasks = {}
        for name, t in named.items():
            if t is not running:
                tasks[name] = {"addr": id(t), "chain": [] if t.done() else chain_of(t),
                               "state": "cancelled" if t.cancelled() else "done" if t.done() else "pending"}
        tasks["R"] = {"addr": id(running), "chain": [], "state": "pending"}
        markers = ["C", "B", "A", "INNER", "MIDDLE", "WORKER", "GATHER", "SHIELD", "TIMED", "GROUP", "FUT",
                   "BUSY", "RUNNER", "MAIN", "EAGER"]
        executing = main_task.get_coro().cr_running  # eager mode: R runs inside the main task's step
        return {
            "pid": os.getpid(),
            "version": list(sys.version_info[:2]),
            "mode": MODE,
            "loop": id(loop),
            "main_task": id(main_task),
            "main_chain": [] if executing else chain_of(main_task),
            "tasks": tasks,
            "many": [id(t) for t in many],
            "groups": groups,
            "lines": {m: line_of("@" + m) for m in markers},
            "offsets": scan_offsets(probe, {"loop": loop, "coro": probe.get_coro(), "fut_waiter": fut,
                                            "name": probe.get_name(), "callback0": print}),
        }

    if MODE == "eager":
        await asyncio.Task(runner(report), loop=loop, name="R", eager_start=True)  # @EAGER
    else:
        r = loop.create_task(runner(report))
        r.set_name("R")
        KEEP.append(r)
        await r  # @MAIN


if MODE == "uvloop":
    import uvloop
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
asyncio.run(main())
