"""`--native` against a real interpreter: native frames merged into the Python stacks.
zlib's deflate under the Python caller (record), libc's sleep under a sleeping caller
(dump), Python -> C -> Python through a C extension built here against the target's
headers, the target never stopped in the default mode, and the pause fallback forced."""
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.request
import uuid

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
    return parse_collapsed(path), err


def parse_collapsed(path):
    """{root-first tuple of names: count} of a collapsed-stacks file, names without (file:line)."""
    stacks = {}
    with open(path) as f:
        for line in f:
            stack, count = line.rstrip("\n").rsplit(" ", 1)
            names = tuple(re.sub(r" \([^()]*:\d+\)$", "", frame) for frame in stack.split(";"))
            stacks[names] = stacks.get(names, 0) + int(count)
    return stacks


# The daemon test's parent: found by --match, it starts the zlib target (whose command line
# does not match), which only --subprocesses finds; prints the child's pid.
PARENT = """import subprocess, sys
child = subprocess.Popen([sys.executable, sys.argv[1], "-1", "-1", "zlib"])
print(child.pid, flush=True)
child.wait()
"""


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

    def check_deflate_under_caller(self, stacks, caller="compress_loop", above=None):
        """Most samples: caller, then zlib's compress, then zlib's deflate code, in that order
        (and `above` before caller, if given). zlib.compress's C function is named where the image
        has symbols; Debian's static builds are stripped and link the zlib module in: there it is
        an unnamed frame of the executable."""
        good = 0
        for names, count in stacks.items():
            if caller not in names:
                continue
            if above and (above not in names or names.index(above) > names.index(caller)):
                continue
            below = names[names.index(caller) + 1:]
            z = [i for i, n in enumerate(below) if re.match(r"^libz\.so\.1!deflate", n)]
            c = [i for i, n in enumerate(below) if not n.startswith("libz") and
                 ("compress" in n.split("!")[-1] or re.match(r"^python3\.\d+\+0x", n))]
            if z and c and c[0] < z[0]:
                good += count
        total = sum(stacks.values())
        self.assertGreater(good, total // 2, "deflate under compress under %s in %d of %d: %s"
                           % (caller, good, total, sorted(stacks.items(), key=lambda kv: -kv[1])[:5]))

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

    def test_async_native_tail_of_the_running_task(self):
        """--async --native (wall mode): the running task's stack ends in the native frames its
        leaf coroutine called; a suspended task's ends in its coroutine."""
        t = self.start("async")
        stacks, err = collapsed(self, "--async", "--native", "--mode", "wall", pid=t.pid)
        self.assertRegex(err, r"native stacks: [1-9]\d* merged")
        running = {n: c for n, c in stacks.items() if "<task compressor>" in n}
        self.check_deflate_under_caller(running, caller="compress_task", above="<task compressor>")
        sleeping = [n for n in stacks if "<task sleeper>" in n]
        self.assertTrue(sleeping, stacks)
        for names in sleeping:  # idle_task in asyncio.sleep's coroutine: Python frames to the leaf
            self.assertEqual(names[-2:], ("idle_task", "sleep"), names)

    def test_async_native_cpu_mode_and_pauses(self):
        """cpu mode; and with the thread stopped to read it (its Python frames read again then
        must still end in the task's leaf frame)."""
        t = self.start("async")
        stacks, _ = collapsed(self, "--async", "--native", pid=t.pid)
        self.check_deflate_under_caller(stacks, caller="compress_task", above="<task compressor>")
        stacks, err = collapsed(self, "--async", "--native", "--native-pause", "always", pid=t.pid)
        self.check_deflate_under_caller(stacks, caller="compress_task", above="<task compressor>")
        self.assertGreater(int(re.search(r"(\d+) thread pauses", err).group(1)), 50, err)

    def test_dump_async_native(self):
        """dump --async --native: the tasks listed, the running one's thread merged."""
        t = self.start("async")
        for attempt in range(5):  # a running thread's copy may not pair at one instant: look again
            d = dump(self, t.pid, "--async")
            main = [th for th in d["threads"] if th["native_thread_id"] == t.pid][0]
            names = [f["function"] for f in main["frames"]]
            if "native_error" not in main and any(re.match(r"^libz\.so\.1!deflate", n) for n in names):
                break
        self.check_deflate_under_caller({tuple(reversed(names)): 1}, caller="compress_task")
        self.assertEqual({x["name"] for x in d["tasks"]} >= {"compressor", "sleeper"}, True, d["tasks"])

    def test_daemon_native(self):
        """daemon --native: a process its rescan finds (--match) and that one's child (found by
        --subprocesses) are read through perf events (no pause); the windows show deflate under
        compress under compress_loop; /metrics counts the merged stacks and passes promtool.
        A small --max-cpu lowers the rate: perf copies follow the ticks (copies at 200 Hz's pace
        filled the rings between ticks at 20 Hz and most stacks had no fresh copy)."""
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        wdir, log = os.path.join(tmp.name, "w"), os.path.join(tmp.name, "daemon.log")
        os.mkdir(wdir)
        tag = "native-daemon-" + uuid.uuid4().hex
        daemon = subprocess.Popen([CONFIG["pyprofd"], "daemon", "--match", tag, "--subprocesses", "--native",
                                   "--window", "1", "--keep", "30", "--rate", "200", "--max-cpu", "0.3", "--dir", wdir,
                                   "--formats", "collapsed", "--listen", "127.0.0.1:0", "--log-file", log],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.addCleanup(common.terminate, daemon)

        def log_text():
            with open(log, errors="replace") as f:
                return f.read()
        port = common.wait_for(lambda: os.path.exists(log) and re.search(r"listening on http://127\.0\.0\.1:(\d+)",
                                                                         log_text()), 10, "the listening line")
        base = "http://127.0.0.1:%s" % port.group(1)

        parent = subprocess.Popen([CONFIG["python"], "-c", PARENT, SCRIPT, tag], stdout=subprocess.PIPE)
        self.addCleanup(parent.wait, timeout=30)
        self.addCleanup(os.kill, parent.pid, signal.SIGKILL)
        child = int(parent.stdout.readline())
        parent.stdout.close()
        self.addCleanup(lambda: os.path.exists("/proc/%d" % child) and os.kill(child, signal.SIGKILL))
        common.wait_for(lambda: "attached process %d " % child in log_text(), 10, "attach of the child")

        def windows():
            stacks = {}
            for name in os.listdir(wdir):
                if name.endswith(".folded"):
                    try:
                        folded = parse_collapsed(os.path.join(wdir, name))
                    except FileNotFoundError:  # rotated out (--keep 30) since the listing
                        continue
                    for k, v in folded.items():
                        stacks[k] = stacks.get(k, 0) + v
            return stacks
        common.wait_for(lambda: re.search(r"--max-cpu 0\.3 %: sampling at", log_text()), 15, "a lower rate")
        # The budget may take the rate down to 1 Hz on a loaded machine (CI runs tests side by side).
        common.wait_for(lambda: sum(c for n, c in windows().items() if "compress_loop" in n) >= 40, 60,
                        "40 samples of compress_loop in the windows")
        self.check_deflate_under_caller({n: c for n, c in windows().items() if "compress_loop" in n})

        def metrics():
            with urllib.request.urlopen(base + "/metrics", timeout=10) as r:
                text = r.read()
            check = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, timeout=30)
            self.assertEqual(check.returncode, 0, check.stdout + check.stderr)
            return {m.group(1): float(m.group(2)) for m in re.finditer(r"^(pyprofd_\w+) (\S+)$", text.decode(), re.M)}
        m1 = metrics()
        self.assertGreater(m1["pyprofd_native_stacks_merged_total"], 20, m1)
        self.assertEqual(m1["pyprofd_native_thread_pauses_total"], 0, m1)
        self.assertIn("pyprofd_native_stacks_torn_total", m1)
        # At the lowered rate (the budget keeps lowering it): nearly every stack has its copy.
        merged = "pyprofd_native_stacks_merged_total"
        m2 = common.wait_for(lambda: (lambda m: m[merged] - m1[merged] >= 20 and m)(metrics()), 60, "20 more stacks")
        missing = m2["pyprofd_native_stacks_unavailable_total"] - m1["pyprofd_native_stacks_unavailable_total"]
        self.assertLess(missing, (m2[merged] - m1[merged]) / 5, (m1, m2, log_text()[-2000:]))

        daemon.send_signal(signal.SIGTERM)
        _, err = daemon.communicate(timeout=30)
        self.assertEqual(daemon.returncode, 0, err)

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
