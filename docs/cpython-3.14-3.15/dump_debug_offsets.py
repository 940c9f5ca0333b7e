"""Print every field of the running interpreter's own _Py_DebugOffsets.

Run with the interpreter to inspect:  pythonX.Y dump_debug_offsets.py HEADER
HEADER: internal/pycore_debug_offsets.h (3.14+) or internal/pycore_runtime.h (3.13).
The field list is parsed from the header; the values are read from this
process's memory at _PyRuntime (found with dlsym via ctypes.pythonapi, i.e. the
executable's .dynsym; cross-checked with /proc/self/mem)."""
import ctypes, re, struct, sys

src = open(sys.argv[1]).read()
body = src[src.index("typedef struct _Py_DebugOffsets {"):]
body = body[:body.index("} _Py_DebugOffsets;")]
fields, stack = [], []
for line in body.splitlines()[1:]:
    line = line.split("//")[0].strip()
    if m := re.match(r"struct\s+\w*\s*\{", line):
        stack.append(None)
    elif m := re.match(r"\}\s*(\w+);", line):
        stack.pop(); fields_prefix = m.group(1)
        # rename the pending fields of this section
        fields[:] = [(f.replace("?.", fields_prefix + ".", 1) if f.startswith("?.") else f) for f in fields]
    elif m := re.match(r"(char|uint64_t)\s+(\w+)(\[8\])?", line):
        fields.append(("?." if stack else "") + m.group(2))
addr = ctypes.addressof(ctypes.c_char.in_dll(ctypes.pythonapi, "_PyRuntime"))
size = 8 + 8 * (len(fields) - 1)
raw = ctypes.string_at(addr, size)
with open("/proc/self/mem", "rb") as mem:
    mem.seek(addr); assert mem.read(size) == raw
print(f"# {sys.version.split()[0]}  _PyRuntime=0x{addr:x}  sizeof(_Py_DebugOffsets)={size} ({len(fields)-1} uint64 after the cookie)")
print(f"cookie = {raw[:8]!r}")
for i, name in enumerate(fields[1:]):
    (v,) = struct.unpack_from("<Q", raw, 8 + 8 * i)
    print(f"+{8 + 8*i:4d}  {name:45s} = {v:#x} ({v})")
