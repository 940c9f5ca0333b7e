# Target for pyprofd's dump tests: known stacks on four threads.
# Every call a test expects to see on a stack is on a line marked "# CALL"
# (recurse's base case: "# CALL-BASE"). Usage:
#   python dump_target.py READY_FD WAIT_FD   park all threads, write "ready" to READY_FD, block until WAIT_FD closes
#   python dump_target.py --describe         print JSON about the functions (names, qualnames, lines) and exit
import json
import os
import sys
import threading
import time

ready_fd = wait_fd = -1
lock = threading.Lock()
busy_started = threading.Event()
sleeper_started = threading.Event()
blocked_started = threading.Event()
running = [True]


def hold():
    os.write(ready_fd, b"ready\n")
    return os.read(wait_fd, 1)  # CALL


def ext_𠀀():
    return hold()  # CALL


def café():
    return ext_𠀀()  # CALL


def ünïcödé_函数():
    return café()  # CALL


def outer():
    def inner():
        return ünïcödé_函数()  # CALL
    return inner()  # CALL


call_lambda = lambda: outer()  # CALL


class Widget:
    def method(self):
        return call_lambda()  # CALL


def recurse(n):
    if n == 0:
        return Widget().method()  # CALL-BASE
    return recurse(n - 1)  # CALL


def f01():
    return f02()  # CALL


def f02():
    return f03()  # CALL


def f03():
    return f04()  # CALL


def f04():
    return f05()  # CALL


def f05():
    return f06()  # CALL


def f06():
    return f07()  # CALL


def f07():
    return f08()  # CALL


def f08():
    return f09()  # CALL


def f09():
    return f10()  # CALL


def f10():
    return f11()  # CALL


def f11():
    return f12()  # CALL


def f12():
    return f13()  # CALL


def f13():
    return f14()  # CALL


def f14():
    return f15()  # CALL


def f15():
    return f16()  # CALL


def f16():
    return f17()  # CALL


def f17():
    return f18()  # CALL


def f18():
    return f19()  # CALL


def f19():
    return f20()  # CALL


def f20():
    return f21()  # CALL


def f21():
    return f22()  # CALL


def f22():
    return f23()  # CALL


def f23():
    return f24()  # CALL


def f24():
    return f25()  # CALL


def f25():
    return f26()  # CALL


def f26():
    return f27()  # CALL


def f27():
    return f28()  # CALL


def f28():
    return f29()  # CALL


def f29():
    return f30()  # CALL


def f30():
    return recurse(5)  # CALL


def busy():
    busy_started.set()
    counter = 0
    while running[0]: counter += 1  # CALL


def sleeper():
    sleeper_started.set()
    time.sleep(3600)  # CALL


def blocked():
    blocked_started.set()
    lock.acquire()  # CALL


def describe():
    """Names and lines of every function, as this interpreter sees them."""
    lines = open(__file__, encoding="utf-8").read().splitlines()
    out = {}
    funcs = [hold, ext_𠀀, café, ünïcödé_函数, outer, call_lambda, Widget.method, recurse, busy, sleeper, blocked,
             main] + [globals()["f%02d" % i] for i in range(1, 31)]
    # Keyed by __qualname__ (known on every version); "qualname" is what the code object says.
    codes = [(f.__qualname__, f.__code__) for f in funcs]
    codes += [("outer.<locals>.inner", c) for c in outer.__code__.co_consts if getattr(c, "co_name", "") == "inner"]
    for key, co in codes:
        start = co.co_firstlineno
        indent = len(lines[start - 1]) - len(lines[start - 1].lstrip())
        end = start + 1
        while end <= len(lines) and (not lines[end - 1].strip() or
                                     len(lines[end - 1]) - len(lines[end - 1].lstrip()) > indent):
            end += 1
        body = range(start, end if "lambda" not in lines[start - 1] else start + 1)
        calls = [n for n in body if n <= len(lines) and "# CALL" in lines[n - 1] and "CALL-BASE" not in lines[n - 1]]
        base = [n for n in body if n <= len(lines) and "# CALL-BASE" in lines[n - 1]]
        out[key] = {
            "name": co.co_name,
            "qualname": getattr(co, "co_qualname", None),
            "first_line": co.co_firstlineno,
            "call_line": calls[-1] if calls else None,  # the last: nested functions come first
            "base_line": base[0] if base else None,
        }
    module_call = [n for n, text in enumerate(lines, 1) if text.strip() == "main()  # CALL"]
    module_code = compile("\n".join(lines) + "\n", __file__, "exec")
    out["<module>"] = {"name": "<module>", "qualname": "<module>", "first_line": module_code.co_firstlineno,
                       "call_line": module_call[0], "base_line": None}
    print(json.dumps({"file": co.co_filename, "functions": out}))


def main():
    threads = [threading.Thread(target=busy, name="busy-worker", daemon=True),
               threading.Thread(target=sleeper, name="sleeper", daemon=True),
               threading.Thread(target=blocked, name="blocked-on-lock", daemon=True)]
    lock.acquire()
    for t in threads:
        t.start()
    busy_started.wait()
    sleeper_started.wait()
    blocked_started.wait()
    f01()  # CALL


if __name__ == "__main__":
    if sys.argv[1:] == ["--describe"]:
        describe()
    else:
        ready_fd, wait_fd = int(sys.argv[1]), int(sys.argv[2])
        main()  # CALL
