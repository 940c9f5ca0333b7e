"""`--native` against a real interpreter: native frames merged into the Python stacks.
zlib's deflate under the Python caller (record), libc's sleep under a sleeping caller
(dump), Python -> C -> Python through a C extension built here against the target's
headers, the target never stopped in the default mode, and the pause fallback forced."""
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

CONFIG = {}
SCRIPT = os.path.join(common.TARGETS, "native_target.py")
EXT_SOURCE = os.path.join(common.TARGETS, "native_ext", "callback.c")
LIBC_WAIT = re.compile(r"^libc\.so\.6!.*(sleep|poll|select)")


def build_extension(tmp):
    """Compiles the callback extension against the target's headers; None when they are missing."""
    code = "import sysconfig; print(sysconfig.get_paths()['include']); print(sysconfig.get_config_var('EXT_SUFFIX'))"
    out = subprocess.run([CONFIG["python"], "-c", code], capture_output=True, text=True, check=True).stdout.split("\n")
    include, suffix = out[0], out[1]
    if not os.path.exists(os.path.join(include, "Python.h")):
        return None
    path = os.path.join(tmp, "pyprofd_callback" + suffix)
    # Debian keeps pyconfig.h under <include's parent>/x86_64-linux-gnu/pythonX.Y/.
    subprocess.run(["gcc", "-shared", "-fPIC", "-O1", "-g", "-I", include, "-I", os.path.dirname(include),
                    "-o", path, EXT_SOURCE], check=True)
    return tmp


def collapsed(test, *args, pid):
    """(stacks {root-first tuple of names: count}, stderr) of `record --pid PID ARGS` as collapsed stacks."""
    tmp = tempfile.TemporaryDirectory()
    test.addCleanup(tmp.cleanup)
    path = os.path.join(tmp.name, "p.folded")
    res = common.run_pyprofd(CONFIG["pyprofd"], "record", "--pid", str(pid), "--duration", "2", "--rate", "200",
                             "-o", path, *args)
    err = res.stderr.decode(errors="replace")
    test.assertEqual(res.returncode, 0, err)
    stacks = {}
    with open(path) as f:
        for line in f:
            stack, count = line.rstrip("\n").rsplit(" ", 1)
            names = tuple(re.sub(r" \([^()]*:\d+\)$", "", frame) for frame in stack.split(";"))
            stacks[names] = stacks.get(names, 0) + int(count)
    return stacks, err


def dump(test, pid, *args):
    res = common.run_pyprofd(CONFIG["pyprofd"], "dump", "--pid", str(pid), "--json", "--native", *args)
    test.assertEqual(res.returncode, 0, res.stderr.decode(errors="replace"))
    return json.loads(res.stdout)


def main_thread(test, d, pid):
    for t in d["threads"]:
        if t["native_thread_id"] == pid:
            test.assertNotIn("native_error", t, t)
            return [f["function"] for f in t["frames"]]
    test.fail("no main thread in %s" % d)


def index(names, pred, what):
    for i, n in enumerate(names):
        if pred(n):
            return i
    raise AssertionError("no %s in %s" % (what, names))


class NativeTest(unittest.TestCase):
    def start(self, mode, *extra):
        t = common.Target(CONFIG["python"], SCRIPT, mode, *extra)
        self.addCleanup(t.stop)
        t.wait_ready()
        return t

    def check_deflate_under_caller(self, stacks):
        """Most samples: compress_loop, then zlib's compress, then zlib's deflate code, in that order.
        zlib.compress's C function is named where the image has symbols; Debian's static builds
        are stripped and link the zlib module in: there it is an unnamed frame of the executable."""
        good = 0
        for names, count in stacks.items():
            if "compress_loop" not in names:
                continue
            below = names[names.index("compress_loop") + 1:]
            z = [i for i, n in enumerate(below) if re.match(r"^libz\.so\.1!deflate", n)]
            c = [i for i, n in enumerate(below) if not n.startswith("libz") and
                 ("compress" in n.split("!")[-1] or re.match(r"^python3\.\d+\+0x", n))]
            if z and c and c[0] < z[0]:
                good += count
        total = sum(stacks.values())
        self.assertGreater(good, total // 2, "deflate under compress under compress_loop in %d of %d: %s"
                           % (good, total, sorted(stacks.items(), key=lambda kv: -kv[1])[:5]))

    def test_zlib_deflate_under_compress(self):
        t = self.start("zlib")
        stacks, err = collapsed(self, "--native", pid=t.pid)
        self.check_deflate_under_caller(stacks)
        self.assertRegex(err, r"native stacks: \d+ merged, \d+ torn .* 0 thread pauses")

    def test_zlib_without_native_python_is_the_leaf(self):
        t = self.start("zlib")
        stacks, _ = collapsed(self, pid=t.pid)
        self.assertTrue(stacks)
        for names in stacks:
            self.assertEqual(names[-1], "compress_loop", names)

    def test_dump_sleep_under_python_caller(self):
        t = self.start("sleep")
        names = main_thread(self, dump(self, t.pid), t.pid)
        libc = index(names, LIBC_WAIT.match, "libc sleep/poll")
        caller = names.index("sleeper")
        self.assertLess(libc, caller, names)
        # Between them only native frames (time.sleep's own C function, named where the image has symbols).
        self.assertTrue(all("!" in n or "+0x" in n for n in names[libc + 1:caller]), names)
        self.assertEqual(names[caller + 1:], ["main", "<module>"])

    def ext_dir(self):
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        d = build_extension(tmp.name)
        if d is None:
            self.skipTest("no Python.h for %s" % CONFIG["name"])
        return d

    def check_python_c_python(self, names):
        inner = names.index("inner")
        c = index(names, lambda n: n.endswith("!pyprofd_native_call_back"), "the C extension's frame")
        outer = names.index("outer")
        self.assertLess(inner, c, names)
        self.assertLess(c, outer, names)
        self.assertTrue(any(n.endswith("<lambda>") for n in names[inner:c]), names)

    def test_python_c_python_in_order(self):
        t = self.start("ext", self.ext_dir())
        self.check_python_c_python(main_thread(self, dump(self, t.pid), t.pid))

    def test_default_mode_never_stops_the_target(self):
        t = self.start("spin", self.ext_dir())
        seen, stop = set(), threading.Event()

        def watch():
            while not stop.is_set():
                for tid in os.listdir("/proc/%d/task" % t.pid):
                    try:
                        with open("/proc/%d/task/%s/status" % (t.pid, tid)) as f:
                            text = f.read()
                    except OSError:
                        continue
                    state = re.search(r"^State:\s+(\S)", text, re.M).group(1)
                    tracer = re.search(r"^TracerPid:\s+(\d+)", text, re.M).group(1)
                    seen.add((state, tracer))
                time.sleep(0.002)

        w = threading.Thread(target=watch)
        w.start()
        try:
            stacks, err = collapsed(self, "--native", pid=t.pid)
        finally:
            stop.set()
            w.join()
        self.assertTrue(all(s not in "tT" and tracer == "0" for s, tracer in seen), seen)
        self.assertIn("0 thread pauses", err)
        spin = [n for n in stacks if "spin" in n]
        self.assertTrue(spin, stacks)
        for names in spin:  # Python -> C -> Python in a profile too
            self.assertLess(names.index("outer"), index(names, lambda n: n.endswith("!pyprofd_native_call_back"), "C"))

    def test_pause_fallback_forced(self):
        t = self.start("zlib")
        stacks, err = collapsed(self, "--native", "--native-pause", "always", pid=t.pid)
        self.check_deflate_under_caller(stacks)
        pauses = int(re.search(r"(\d+) thread pauses", err).group(1))
        self.assertGreater(pauses, 50, err)
        t2 = self.start("ext", self.ext_dir())
        d = dump(self, t2.pid, "--native-pause", "always")
        self.assertGreaterEqual(d["native_pauses"], 1)
        self.check_python_c_python(main_thread(self, d, t2.pid))


if __name__ == "__main__":
    common.main(globals())
