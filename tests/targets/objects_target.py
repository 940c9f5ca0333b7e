"""Target for tests/unit/py_objects_test.cc: builds known objects, reports their
addresses as one JSON line on the file descriptor given as argv[1], then blocks
until the test kills it. Runs unchanged on Python 3.8-3.13."""
import ctypes
import json
import os
import sys
import threading
import types

GLOBAL_INT = 4242
GLOBAL_STR = "module-global"


class Plain:
    def __init__(self):
        self.alpha = 1
        self.name = "plain-instance"
        self.text = "ünïcödé"
        self.big = 2**40


class Many:
    """More attributes than shared keys hold: ends up in an ordinary dict."""

    def __init__(self):
        for i in range(40):
            setattr(self, "attr%d" % i, i * 3)


inst = Plain()
inst.deleted = "gone"
del inst.deleted
late = Plain()
late.__dict__  # materialise the dict first (3.11+: leaves the inline/values form)
late.late_attr = "set-after-dict"
split_inst = Plain()
split_dict = split_inst.__dict__
many = Many()

custom = types.ModuleType("pyprofd_custom")
custom.answer = 42
custom.label = "custom-module"
sys.modules["pyprofd_custom"] = custom

strings = {
    "ascii": "hello world",
    "empty": "",
    "latin1": "café crème",
    "ucs2": "Ωmega ∑ 漢字",
    "ucs4": "snake 🐍 emoji",
    "long": "abcdefghij" * 1000,
}
ints = {
    "zero": 0, "one": 1, "minus_one": -1, "small": 42, "negative": -12345,
    "two_digits": 2**40 + 7, "three_digits": 2**62 + 5, "max": 2**63 - 1, "min": -(2**63),
}
too_big = [2**63, -(2**63) - 1, 2**100]
big = {"k%d" % i: i for i in range(2000)}     # 2-byte indices
huge = {"h%d" % i: i for i in range(50000)}   # 4-byte indices
int_keyed = {i: str(i) for i in range(10)}

stop = threading.Event()
ready = [threading.Event(), threading.Event()]


def worker(ev):
    ev.set()
    stop.wait()


threads = [threading.Thread(target=worker, args=(ready[0],), name="worker-1", daemon=True),
           threading.Thread(target=worker, args=(ready[1],), name="ünïcödé-thread", daemon=True)]
for t in threads:
    t.start()
for ev in ready:
    ev.wait()

runtime = ctypes.addressof(ctypes.c_char.in_dll(ctypes.pythonapi, "_PyRuntime"))
report = {
    "pid": os.getpid(),
    "version": list(sys.version_info[:2]),
    "runtime": runtime,
    "modules": id(sys.modules),
    "threading": id(threading),
    "active": id(threading._active),
    "main_module": id(sys.modules[__name__]),
    "custom": id(custom),
    "inst": id(inst), "late": id(late), "many": id(many),
    "split_dict": id(split_dict),
    "big": id(big), "huge": id(huge), "int_keyed": id(int_keyed),
    "strings": {k: [id(v), v] for k, v in strings.items()},
    "ints": {k: [id(v), v] for k, v in ints.items()},
    "too_big": [id(v) for v in too_big],
    "threads": {str(t.ident): t.name for t in threading.enumerate()},
}
with os.fdopen(int(sys.argv[1]), "w") as out:
    out.write(json.dumps(report) + "\n")
stop.wait()
