"""Walk this interpreter's own frames and asyncio tasks using only raw memory reads
and the offsets from its own _Py_DebugOffsets / .AsyncioDebug (3.14+, default build).
Run: pythonX.Y walk_self.py   -- checks the facts written in py314.md."""
import asyncio, ctypes, sys, threading

u64 = lambda a: ctypes.c_uint64.from_address(a).value
u8 = lambda a: ctypes.c_uint8.from_address(a).value
V = sys.version_info[:2]
# offsets as dumped by dump_debug_offsets.py for the Debian sid builds
TS_CUR, TS_NEXT, TS_TID = 72, 8, (152 if V == (3, 14) else 176)
FR_PREV, FR_EXEC, FR_IP, FR_OWNER, FR_SP = 8, 0, 56, 74, 64
CO_QUALNAME, CO_ADAPTIVE, CO_FIRSTLINE = 128, 208, 68
TASK_NAME, TASK_CORO, TASK_NODE, GEN_IFRAME, GEN_STATE = 136, 128, 152, 72, 67
TSI_LOOP, TSI_TASK, TSI_HEAD = (864, 872, 880) if V == (3, 14) else (1024, 1032, 1048)
OWNERS = {0: "THREAD", 1: "GENERATOR", 2: "FRAME_OBJECT", 3: "INTERPRETER", 4: "CSTACK"}

def pystr(addr):  # compact str: data after PyASCIIObject (40) or PyCompactUnicodeObject (56)
    st = u8(addr + 32); n = u64(addr + 16); kind = (st >> 2) & 7; ascii_ = (st >> 6) & 1
    data = addr + (40 if ascii_ else 56)
    raw = ctypes.string_at(data, n * kind)
    return raw.decode({1: "latin-1", 2: "utf-16-le", 4: "utf-32-le"}[kind])

def frames(f, limit=50):
    out = []
    while f and limit:
        ex = u64(f + FR_EXEC); owner = u8(f + FR_OWNER)
        code = ex & ~3
        name = pystr(u64(code + CO_QUALNAME)) if owner in (0, 1, 2) and code else None
        out.append(f"owner={owner}({OWNERS.get(owner)}) f_executable=0x{ex:x} tag={ex & 3} {name or ''}")
        f = u64(f + FR_PREV); limit -= 1
    return out

def tstate_of_current():
    ctypes.pythonapi.PyThreadState_Get.restype = ctypes.c_void_p
    return ctypes.pythonapi.PyThreadState_Get()

def report(label):
    ts = tstate_of_current()
    print(f"--- {label}: tstate=0x{ts:x} thread_id=0x{u64(ts + TS_TID):x} (threading.get_ident()=0x{threading.get_ident():x})")
    if V >= (3, 15):
        print(f"    base_frame ptr=0x{u64(ts + 80):x} (&impl.base_frame=0x{ts + 888:x})")
    for line in frames(u64(ts + TS_CUR)): print("   ", line)
    return ts

def inner(): return report("main thread")
def outer(): return inner()

print(sys.version)
outer()
t = threading.Thread(target=lambda: report("second thread"), name="t2"); t.start(); t.join()

async def leaf(ev): await ev.wait()
async def worker(ev): await leaf(ev)
async def main():
    ev = asyncio.Event()
    tasks = [asyncio.create_task(worker(ev)), asyncio.create_task(worker(ev), name="named-é")]
    await asyncio.sleep(0)
    ts = tstate_of_current()
    print(f"--- asyncio: running_loop=0x{u64(ts + TSI_LOOP):x} (id={id(asyncio.get_running_loop()):#x})"
          f" running_task=0x{u64(ts + TSI_TASK):x} (current_task id={id(asyncio.current_task()):#x})")
    head = ts + TSI_HEAD; node = u64(head)
    while node != head:  # circular list, llist_node.next at 0
        task = node - TASK_NODE; nm = u64(task + TASK_NAME); tp = type(ctypes.cast(nm, ctypes.py_object).value).__name__
        coro = u64(task + TASK_CORO)
        print(f"    task 0x{task:x} name obj type={tp} value={ctypes.cast(nm, ctypes.py_object).value!r} "
              f"coro gi_frame_state={u8(coro + GEN_STATE)}")
        for line in frames(coro + GEN_IFRAME, 5): print("       ", line)
        node = u64(node)
    ev.set(); await asyncio.gather(*tasks)
asyncio.run(main())
