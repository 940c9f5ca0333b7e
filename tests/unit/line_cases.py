"""Line-table oracle for tests/unit/line_table_test.cc (runs on Python 3.8-3.13).

Prints JSON: for every code object below (recursively through co_consts), its
raw line table bytes (co_lnotab <= 3.9, co_linetable 3.10+), co_firstlineno and
the interpreter's own answer, PyCode_Addr2Line(code, offset), for each byte
offset from -2 to len(co_code)+3; plus an independent answer for in-range
offsets (co_lines() on 3.10+, dis.findlinestarts on 3.8/3.9).
The functions are never called: only their compiled line tables matter.
"""
import ctypes
import dis
import json
import random
import sys


# ---- hand-written cases: their layout in this file is the test input ----

def simple(a, b):
    c = a + b
    return c


def loops(n):
    total = 0
    for i in range(n):
        if i % 2:
            continue
        while total < i:
            total += 1
    else:
        total -= 1
    return total


def multi_line_expr(a, b, c):
    x = (a +
         b *
         c)
    y = max(
        a,
        b,
        c,
    )
    return [
        x,
        y,
    ]


def try_except(f):
    try:
        f()
    except ValueError as e:
        print(e)
    except (TypeError, KeyError):
        pass
    else:
        return 1
    finally:
        print("done")
    with open(f) as fh:
        fh.read()
    return 0


def nested(a):
    def inner(b):
        def innermost(c):
            return a + b + c
        return innermost
    lam = lambda x: (x +
                     a)
    return inner(lam(1))


def gen(n):
    for i in range(n):
        yield i
    yield from range(n)
    return (
        n)


def comps(xs):
    a = [x * 2 for x in xs if x]
    b = {x: y
         for x in xs
         for y in xs}
    c = {x for x in xs}
    d = (x for x in
         xs)
    return a, b, c, d


async def coro(aw):
    async with aw as v:
        await v
    async for item in aw:
        print(item)
    return [z async for z in aw]


class Klass:
    attr = 1

    def method(self):
        return self.attr

    @property
    def prop(self):
        return (
            self
            .attr
        )


def backwards(a):
    # A call whose callee line is above its arguments: the line goes back.
    return dict(
        one=a,
        two=a,
    ).get(
        "one"
    )


def conditional(a):
    return (a
            if a > 0 else
            -a
            if a < 0 else
            0)


# ---- generated cases: large line and bytecode distances ----

def generated_sources():
    out = []
    # Statements 130 and 300 lines apart (lnotab splits deltas > 127).
    body = "def far_apart(a):\n    x = a\n" + "\n" * 130 + "    y = x + 1\n" + \
        "\n" * 300 + "    z = y + 1\n" + "\n" * 1000 + "    return z\n"
    out.append(("far_apart", body))
    # Loop bodies 300 lines below their header: large negative deltas.
    body = "def far_loop(n):\n    t = 0\n    for i in range(n):\n" + "\n" * 300 + \
        "        t += i\n    while t > 0:\n" + "\n" * 200 + "        t -= 1\n    return t\n"
    out.append(("far_loop", body))
    # One line of a lot of bytecode: address deltas > 255.
    names = ", ".join("a%d" % (i % 7) for i in range(400))
    body = "def big_line(a0, a1, a2, a3, a4, a5, a6):\n    x = [" + names + "]\n" + \
        "    y = [" + names + "]; z = {" + ", ".join("%d: a1" % i for i in range(300)) + "}\n" + \
        "    return x, y, z\n"
    out.append(("big_line", body))
    # A call whose arguments span 400 lines, then back to the call's line.
    body = "def long_call(f, a):\n    return f(\n        a,\n" + "\n" * 400 + "        a)\n"
    out.append(("long_call", body))
    # First line far into a file.
    body = "\n" * 100000 + "def far_first(a):\n    if a:\n        return 1\n" + \
        "\n" * 5 + "    return lambda: (a,\n" + "\n" * 140 + "        a)\n"
    out.append(("far_first", body))
    # A long function: many small statements, each on its own line.
    body = "def long_func(a):\n" + "".join("    a = a + %d\n" % i for i in range(1500)) + \
        "    return a\n"
    out.append(("long_func", body))
    if sys.version_info >= (3, 10):
        body = ("def matcher(p):\n    match p:\n        case [x, y, *rest]:\n"
                "            return x\n        case {'k': v}:\n            return v\n"
                "        case Klass(attr=1) | None:\n            return 0\n"
                "        case _:\n            return -1\n")
        out.append(("matcher", body))
    if sys.version_info >= (3, 11):
        body = ("def groups(f):\n    try:\n        f()\n    except* ValueError:\n"
                "        pass\n    except* TypeError as eg:\n        print(eg)\n    return f\n")
        out.append(("groups", body))
    return out


# ---- synthetic but well-formed tables: formats the compiler rarely emits ----

def varint(v):
    out = []
    while v >= 64:
        out.append(64 | (v & 63))
        v >>= 6
    out.append(v)
    return out


def svarint(v):
    return varint(((-v) << 1) | 1 if v < 0 else v << 1)


def synthetic_table(rng, code_len):
    """A random valid table for this version covering code_len bytes."""
    minor = sys.version_info.minor
    out = []
    covered = 0
    if minor <= 9:
        while covered < code_len:
            a = rng.choice([0, 1, 2, 6, 254, 255])
            out += [min(a, code_len - covered) if a else 0, rng.randrange(256)]
            covered += out[-2]
    elif minor == 10:
        while covered < code_len:
            a = min(rng.choice([0, 2, 4, 10, 254]), code_len - covered)
            if covered + a == code_len and a == 0:
                a = 2
            out += [a, rng.choice([0x80, 0x80, 0, 1, 127, 0x81, 0xff, 5])]
            covered += a
    else:
        while covered < code_len:
            units = min(rng.randrange(1, 9), (code_len - covered) // 2)
            code = rng.randrange(16)
            out.append(0x80 | (code << 3) | (units - 1))
            if code < 10:
                out.append(rng.randrange(128))
            elif code <= 12:
                out += [rng.randrange(128), rng.randrange(128)]
            elif code == 13:
                out += svarint(rng.randrange(-5000, 5000))
            elif code == 14:
                out += svarint(rng.randrange(-300, 300)) + varint(rng.randrange(5)) + \
                    varint(rng.randrange(200)) + varint(rng.randrange(200))
            covered += units * 2
    return bytes(out)


# ---- collection ----

def table_of(co):
    return co.co_lnotab if sys.version_info < (3, 10) else co.co_linetable


def alt_lines(co):
    """Line per in-range offset from Python-level APIs (not PyCode_Addr2Line)."""
    n = len(co.co_code)
    if sys.version_info >= (3, 10):
        lines = [-1] * n
        for start, end, line in co.co_lines():
            for off in range(max(start, 0), min(end, n)):
                lines[off] = -1 if line is None else line
        return lines
    starts = list(dis.findlinestarts(co))
    lines = []
    for off in range(n):
        line = co.co_firstlineno
        for s, l in starts:
            if s <= off:
                line = l
        lines.append(line)
    return lines


def walk(co, seen):
    if id(co) in seen:
        return
    seen[id(co)] = co
    for c in co.co_consts:
        if isinstance(c, type(co)):
            walk(c, seen)


def main():
    addr2line = ctypes.pythonapi.PyCode_Addr2Line
    addr2line.argtypes = [ctypes.py_object, ctypes.c_int]
    addr2line.restype = ctypes.c_int

    codes = []
    with open(__file__) as f:
        src = f.read()
    sources = [("line_cases", src)] + generated_sources()
    seen = {}
    for name, text in sources:
        walk(compile(text, name + ".py", "exec"), seen)
    for co in seen.values():
        codes.append((co.co_name, co, False))

    rng = random.Random(1234)
    base = [co for co in seen.values() if len(co.co_code) >= 8]
    for i in range(60):
        co = base[i % len(base)]
        table = synthetic_table(rng, len(co.co_code))
        kw = {"co_lnotab" if sys.version_info < (3, 10) else "co_linetable": table}
        kw["co_firstlineno"] = rng.choice([1, 7, 300, 70000])
        codes.append(("synthetic%d" % i, co.replace(**kw), True))

    out = []
    for name, co, synthetic in codes:
        n = len(co.co_code)
        out.append({
            "name": name,
            "synthetic": synthetic,
            "first_line": co.co_firstlineno,
            "code_len": n,
            "table": table_of(co).hex(),
            "lines": [addr2line(co, off) for off in range(-2, n + 4)],
            "alt": alt_lines(co),
        })
    json.dump({"minor": sys.version_info.minor, "version": sys.version.split()[0],
               "executable": sys.executable, "codes": out}, sys.stdout)


if __name__ == "__main__":
    main()
