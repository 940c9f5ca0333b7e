"""Print the 13 uint64 of the .AsyncioDebug section of an ELF file (3.14: the
_asyncio extension .so; 3.15 Debian: the python executable, _asyncio built in).
Usage: python3 dump_asyncio_debug.py FILE"""
import struct, sys
names = ["asyncio_task_object.size", "asyncio_task_object.task_name", "asyncio_task_object.task_awaited_by",
         "asyncio_task_object.task_is_task", "asyncio_task_object.task_awaited_by_is_set",
         "asyncio_task_object.task_coro", "asyncio_task_object.task_node",
         "asyncio_interpreter_state.size", "asyncio_interpreter_state.asyncio_tasks_head",
         "asyncio_thread_state.size", "asyncio_thread_state.asyncio_running_loop",
         "asyncio_thread_state.asyncio_running_task", "asyncio_thread_state.asyncio_tasks_head"]
data = open(sys.argv[1], "rb").read()
shoff, = struct.unpack_from("<Q", data, 0x28)
shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3a)
def sh(i): return struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize)
stroff = sh(shstrndx)[4]
for i in range(shnum):
    name_off, typ, flags, addr, off, size, *_ = sh(i)
    name = data[stroff + name_off: data.index(b"\0", stroff + name_off)].decode()
    if name == ".AsyncioDebug":
        print(f"# {sys.argv[1]}: .AsyncioDebug vaddr=0x{addr:x} file_off=0x{off:x} size={size}")
        for j, n in enumerate(names):
            v, = struct.unpack_from("<Q", data, off + 8 * j)
            print(f"+{8*j:3d}  {n:45s} = {v:#x} ({v})")
