"""`pyprofd dump` against a real interpreter: exact functions, files, lines and
thread names on four threads (a 30-deep chain, recursion, a method, a lambda, a
nested function, non-ASCII names; busy, sleeping and lock-blocked threads)."""
import json
import os
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

CONFIG = {}
SCRIPT = os.path.join(common.TARGETS, "dump_target.py")


def describe():
    out = subprocess.run([CONFIG["python"], SCRIPT, "--describe"], capture_output=True, check=True)
    return json.loads(out.stdout)


class DumpTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        info = describe()
        cls.funcs = info["functions"]
        cls.file = info["file"]
        cls.modern = sys.version_info  # unused; names depend on the target's version below
        cls.target = common.Target(CONFIG["python"], SCRIPT)
        cls.target.wait_ready()

    @classmethod
    def tearDownClass(cls):
        cls.target.stop()

    def fn(self, key, line_kind="call_line"):
        f = self.funcs[key]
        name = f["qualname"] if f["qualname"] is not None else f["name"]
        return {"function": name, "file": self.file, "line": f[line_kind], "first_line": f["first_line"]}

    def expected_main(self):
        frames = [self.fn(k) for k in ["hold", "ext_\U00020000", "café", "ünïcödé_函数", "outer.<locals>.inner", "outer",
                                       "<lambda>", "Widget.method"]]
        frames.append(self.fn("recurse", "base_line"))
        frames += [self.fn("recurse")] * 5
        frames += [self.fn("f%02d" % i) for i in range(30, 0, -1)]
        frames += [self.fn("main"), self.fn("<module>")]
        return frames

    def dump_json(self):
        res = common.run_pyprofd(CONFIG["pyprofd"], "dump", "--pid", str(self.target.pid), "--json")
        self.assertEqual(res.returncode, 0, res.stderr.decode(errors="replace"))
        self.assertEqual(res.stderr, b"")
        return json.loads(res.stdout)

    def test_json_stacks_exact(self):
        d = self.dump_json()
        self.assertEqual(d["pid"], self.target.pid)
        major_minor = CONFIG["name"].lstrip("pydebiansid")  # py3.9, debian3.11, sid3.14 -> 3.X
        self.assertTrue(d["python_version"].startswith(major_minor + "."), d["python_version"])
        self.assertIn(SCRIPT, d["executable"])
        by_name = {t["name"]: t for t in d["threads"]}
        self.assertEqual(sorted(by_name), sorted(["MainThread", "busy-worker", "sleeper", "blocked-on-lock"]))

        self.assertEqual(by_name["MainThread"]["frames"], self.expected_main())
        for thread, key in [("busy-worker", "busy"), ("sleeper", "sleeper"), ("blocked-on-lock", "blocked")]:
            frames = by_name[thread]["frames"]
            self.assertEqual(frames[0], self.fn(key), thread)
            # Below the thread's function: threading's own bootstrap frames.
            self.assertGreaterEqual(len(frames), 3, thread)
            for f in frames[1:]:
                self.assertTrue(f["file"].endswith("threading.py"), f)
            self.assertIn(frames[-1]["function"], ("_bootstrap", "Thread._bootstrap"))

        tids = {int(t) for t in os.listdir("/proc/%d/task" % self.target.pid)}
        for t in d["threads"]:
            self.assertIn(t["native_thread_id"], tids, t["name"])
        self.assertEqual(by_name["MainThread"]["native_thread_id"], self.target.pid)
        self.assertEqual(len({t["native_thread_id"] for t in d["threads"]}), 4)

    def test_gil_holder(self):
        # Only the busy thread wants the GIL; the others wait in C calls without it.
        holders = []
        for _ in range(5):
            d = self.dump_json()
            held = [t["name"] for t in d["threads"] if t["holds_gil"]]
            self.assertLessEqual(len(held), 1, held)
            holders += held
        self.assertIn("busy-worker", holders)
        self.assertEqual(set(holders), {"busy-worker"})

    def test_text_output(self):
        res = common.run_pyprofd(CONFIG["pyprofd"], "dump", "--pid", str(self.target.pid))
        self.assertEqual(res.returncode, 0, res.stderr)
        text = res.stdout.decode("utf-8")
        lines = text.splitlines()
        self.assertEqual(lines[0], "Process %d: %s %s %s" % (self.target.pid, CONFIG["python"], SCRIPT,
                                                              " ".join(self.target.proc.args[2:])))
        self.assertTrue(lines[1].startswith("Python v"), lines[1])
        self.assertIn('Thread %d (' % self.target.pid, text)
        self.assertIn('): "MainThread"', text)
        main = self.expected_main()
        block = text[text.index('"MainThread"'):].splitlines()[1:len(main) + 1]
        self.assertEqual(block, ["    %s (%s:%d)" % (f["function"], f["file"], f["line"]) for f in main])


if __name__ == "__main__":
    common.main(globals())
