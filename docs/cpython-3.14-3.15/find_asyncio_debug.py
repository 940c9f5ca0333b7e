"""Locate .AsyncioDebug in a running process the way an outside reader would:
/proc/PID/maps -> file of each mapping whose name contains "python" (covers
pythonX.Y and _asyncio.cpython-3XX-*.so) -> ELF section headers -> section
sh_addr + (lowest mapping start of that file - first PT_LOAD p_vaddr, page-aligned).
Usage: python3 find_asyncio_debug.py PID"""
import struct, sys
pid = sys.argv[1]
starts = {}
for line in open(f"/proc/{pid}/maps"):
    parts = line.split(maxsplit=5)
    if len(parts) == 6 and "python" in parts[5].rsplit("/", 1)[-1]:
        path = parts[5].strip(); start = int(parts[0].split("-")[0], 16)
        starts[path] = min(start, starts.get(path, start))
for path, start in starts.items():
    data = open(f"/proc/{pid}/root{path}", "rb").read()
    phoff, shoff = struct.unpack_from("<QQ", data, 0x20)
    phentsize, phnum, shentsize, shnum, shstrndx = struct.unpack_from("<HHHHH", data, 0x36)
    first_load = next(struct.unpack_from("<IIQQQQQQ", data, phoff + i * phentsize)
                      for i in range(phnum) if struct.unpack_from("<I", data, phoff + i * phentsize)[0] == 1)
    p_vaddr, p_align = first_load[3], first_load[7]
    bias = start - (p_vaddr - p_vaddr % p_align)
    sh = lambda i: struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize)
    stroff = sh(shstrndx)[4]
    for i in range(shnum):
        s = sh(i); name = data[stroff + s[0]: data.index(b"\0", stroff + s[0])]
        if name in (b".AsyncioDebug", b".PyRuntime"):
            addr = bias + s[3]
            with open(f"/proc/{pid}/mem", "rb") as m:
                m.seek(addr); first = struct.unpack("<4Q", m.read(32))
            print(f"{path}: {name.decode()} at 0x{addr:x} (bias 0x{bias:x}) first words {[hex(x) for x in first]}")
