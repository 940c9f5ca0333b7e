"""`pyprofd record` against a real interpreter, checked with the pstats readers of
the target's version: deep recursion, threads
in cpu and wall mode, stopping on SIGINT, a target that exits first, launching a
command and returning its exit code, and bad output paths."""
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

CONFIG = {}
SCRIPT = os.path.join(common.TARGETS, "record_target.py")


class RecordTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self.tmp.cleanup)

    def path(self, name):
        return os.path.join(self.tmp.name, name)

    def record(self, pid, *args, out="profile.stats", timeout=120, env=None):
        path = self.path(out)
        res = common.run_pyprofd(CONFIG["pyprofd"], "record", "--pid", str(pid), "-o", path, *args, timeout=timeout,
                                 env=env)
        err = res.stderr.decode(errors="replace")
        self.assertEqual(res.returncode, 0, err)
        self.assertIn("wrote " + path, err)
        return path, err

    def stats(self, path, python=None):
        return common.read_pstats(path, python or CONFIG["python"])

    def test_recursion_200(self):
        with common.Target(CONFIG["python"], SCRIPT, "recurse", "10") as t:
            t.wait_ready()
            path, err = self.record(t.pid, "--rate", "100", "--duration", "2")
        total, stats = self.stats(path)
        rec = common.by_name(stats, "recurse")
        self.assertLessEqual(rec["ct"], total + 1e-9)
        self.assertGreater(rec["ct"], 0.5 * total)
        # Recursion counts once per sample: nc is at most the number of samples.
        samples = int(err.split(" samples")[0].rsplit(" ", 1)[1])
        self.assertLessEqual(rec["nc"], samples)
        for key, entry in stats.items():
            for caller in entry["callers"]:
                self.assertIn(caller, stats, "caller %s of %s is not a key" % (caller, key))
            if entry["callers"]:
                # The leaf time charged to edges adds up to the function's own time.
                self.assertAlmostEqual(sum(c[2] for c in entry["callers"].values()), entry["tt"], places=6)
                self.assertGreaterEqual(sum(c[3] for c in entry["callers"].values()) + 1e-9, entry["ct"])
        self.assertIn(("recurse" in [k[2] for k in rec["callers"]]), [True])

    def test_threads_cpu_and_wall(self):
        with common.Target(CONFIG["python"], SCRIPT, "threads", "20") as t:
            t.wait_ready()
            wall, _ = self.record(t.pid, "--mode", "wall", "--duration", "2", out="wall.stats")
            cpu, _ = self.record(t.pid, "--mode", "cpu", "--duration", "2", out="cpu.stats")
        _, wall_stats = self.stats(wall)
        _, cpu_stats = self.stats(cpu)
        names_wall = {k[2] for k in wall_stats}
        names_cpu = {k[2] for k in cpu_stats}
        self.assertIn("sleeper", names_wall)
        self.assertIn("spin", names_wall)
        self.assertNotIn("sleeper", names_cpu)
        self.assertIn("spin", names_cpu)
        # Wall mode: the sleeper's thread is charged about the whole 2 s.
        self.assertGreater(common.by_name(wall_stats, "sleeper")["ct"], 1.5)

    def test_cpu_mode_charges_bursts_to_the_code_that_ran(self):
        # A thread that runs 4 ms and sleeps 2 ms: its CPU belongs to burn(), not to
        # rest(), where it sits when the kernel books the CPU it used (schedstat put
        # over 99 % there). rest() keeps the moments after each wake-up when the
        # thread waits for a CPU (state R): up to a quarter on a busy 2-core VM.
        with common.Target(CONFIG["python"], SCRIPT, "bursts", "20") as t:
            t.wait_ready()
            path, _ = self.record(t.pid, "--mode", "cpu", "--rate", "1000", "--duration", "2")
        total, stats = self.stats(path)
        burn = common.by_name(stats, "burn")["tt"]
        rest = common.by_name(stats, "rest")["tt"] if any(k[2] == "rest" for k in stats) else 0.0
        msg = "burn %.3f s, rest %.3f s of %.3f s" % (burn, rest, total)
        print(msg)
        self.assertGreater(burn, 0.65 * total, msg)
        self.assertLess(rest, 0.35 * total, msg)
        # About two thirds of the 2 s are burn()'s (less when the machine is busy).
        self.assertGreater(total, 0.5, msg)

    def new_threads_spin(self, seconds, switch_events):
        # Each thread lives 0.4 s (spinning: running or waiting for a CPU, state R) in a
        # process that is otherwise asleep, one every 1.2 s: at least 1.2 s of any 4 s. pyprofd
        # skips the stack reads of idle processes, and must still see a new thread at
        # the next tick, not at the once-a-second full read (up to 3.11 that missed whole threads: 0.4-0.9 s).
        env = dict(os.environ, PYPROFD_SWITCH_EVENTS="1" if switch_events else "0")
        with common.Target(CONFIG["python"], SCRIPT, "new_threads", "30") as t:
            t.wait_ready()
            time.sleep(0.5)
            path, err = self.record(t.pid, "--mode", "cpu", "--rate", "100", "--duration", str(seconds), env=env)
        total, stats = self.stats(path)
        spin = common.by_name(stats, "spin")["ct"]
        want = seconds / 3.0 - 0.15  # one burst missed leaves 0.4 s less
        msg = "spin %.3f s of %.3f s sampled (at least %.2f s expected)\n%s" % (spin, total, want, err)
        print(msg)
        self.assertGreater(spin, want, msg)
        m = re.search(r"(\d+) process ticks skipped with nothing on a CPU \((\d+) known from context-switch", err)
        self.assertIsNotNone(m, err)
        return int(m.group(1)), int(m.group(2)), err

    def test_cpu_mode_finds_new_threads_of_an_idle_process(self):
        skipped, by_records, _ = self.new_threads_spin(4, switch_events=False)
        self.assertEqual(by_records, 0, "PYPROFD_SWITCH_EVENTS=0: /proc only")

    def test_cpu_mode_on_context_switch_records(self):
        # The same on context-switch records (PYPROFD_SWITCH_EVENTS=1: from the start, not
        # when the session finds them cheaper, which depends on the machine's switch rate).
        with open("/proc/sys/kernel/perf_event_paranoid") as f:
            if os.geteuid() != 0 and int(f.read()) > 0:
                self.skipTest("system-wide perf events are not allowed for this user")
        skipped, by_records, err = self.new_threads_spin(4, switch_events=True)
        refused = re.search(r"context-switch records unavailable: (.*)", err)
        if refused:  # e.g. a container's seccomp: the /proc path above was still checked
            self.skipTest("context-switch records unavailable here: " + refused.group(1))
        self.assertGreater(by_records, 0, "no tick was skipped on context-switch records")

    def test_sigint_writes_complete_file(self):
        with common.Target(CONFIG["python"], SCRIPT, "forever") as t:
            t.wait_ready()
            path = self.path("int.stats")
            p = subprocess.Popen([CONFIG["pyprofd"], "record", "--pid", str(t.pid), "-o", path],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            time.sleep(1.5)  # let it record; not a synchronisation
            p.send_signal(signal.SIGINT)
            out, err = p.communicate(timeout=60)
            self.assertEqual(p.returncode, 0, err)
            self.assertIsNone(t.proc.poll(), "the target must keep running")
        total, stats = self.stats(path)
        self.assertGreater(total, 0)
        self.assertIn("spin_cpu", {k[2] for k in stats})
        self.assertEqual([f for f in os.listdir(self.tmp.name) if f != "int.stats"], [], "temporary files left")

    def test_target_exits_first(self):
        with common.Target(CONFIG["python"], SCRIPT, "ratio", "1.5") as t:
            t.wait_ready()
            path, err = self.record(t.pid, timeout=60)
        total, stats = self.stats(path)
        self.assertIn("heavy", {k[2] for k in stats})
        self.assertLess(total, 1.6)

    def test_launch_returns_exit_code(self):
        path = self.path("launch.stats")
        res = common.run_pyprofd(CONFIG["pyprofd"], "record", "-o", path, "--",
                                 CONFIG["python"], SCRIPT, "-1", "-1", "exit", "7")
        self.assertEqual(res.returncode, 7, res.stderr)
        total, stats = self.stats(path)
        names = {k[2] for k in stats}
        self.assertIn("spin_cpu", names)
        self.assertIn("<module>", names)

    def test_top_table(self):
        with common.Target(CONFIG["python"], SCRIPT, "ratio", "10") as t:
            t.wait_ready()
            path = self.path("top.stats")
            res = common.run_pyprofd(CONFIG["pyprofd"], "record", "--pid", str(t.pid), "--duration", "1.5",
                                     "--top", "5", "-o", path)
        self.assertEqual(res.returncode, 0, res.stderr)
        out = res.stdout.decode()
        self.assertIn("Ordered by: internal time", out)
        rows = [l for l in out.splitlines() if re.match(r"\s*[\d/]+\s+[\d.]+\s+[\d.]+\s+[\d.]+", l)]
        self.assertEqual(len(rows), 5, out)
        self.assertTrue(any("(heavy)" in r for r in rows[:2]), out)

    def test_status_line_on_a_terminal(self):
        script = shutil.which("script")
        self.assertIsNotNone(script, "script (util-linux) is required")
        with common.Target(CONFIG["python"], SCRIPT, "ratio", "10") as t:
            t.wait_ready()
            cmd = "%s record --pid %d --duration 1.5 --top 0 -o %s" % (CONFIG["pyprofd"], t.pid, self.path("tty.stats"))
            res = subprocess.run([script, "-q", "-e", "-c", cmd, "/dev/null"], capture_output=True, timeout=60)
        out = res.stdout.decode(errors="replace")
        self.assertEqual(res.returncode, 0, out)
        status = re.findall(r"\rpyprofd: [\d.]+ s, \d+ samples, [\d.]+ Hz, 1 processes, \d+ errors", out.replace("\x1b[K", ""))
        self.assertGreaterEqual(len(status), 2, out)
        self.assertLessEqual(len(status), 1.5 * 4 + 2, "at most 4 refreshes a second")

    def test_bad_arguments(self):
        def run(*args):
            return common.run_pyprofd(CONFIG["pyprofd"], "record", *args)
        with common.Target(CONFIG["python"], SCRIPT, "forever") as t:
            t.wait_ready()
            pid = str(t.pid)
            res = run("--pid", pid, "-o", "/nonexistent-dir/x.stats", "--duration", "1")
            self.assertEqual(res.returncode, 1)
            self.assertIn(b"/nonexistent-dir", res.stderr)
            res = run("--pid", pid, "-o", self.path("x.unknownext"), "--duration", "1")
            self.assertEqual(res.returncode, 2)
            for rate in ("0", "100001", "abc"):
                self.assertEqual(run("--pid", pid, "--rate", rate, "-o", self.path("x.stats")).returncode, 2, rate)
            self.assertEqual(run("--pid", pid, "-o", self.path("y.stats"), "--", CONFIG["python"], "-c", "1").returncode, 2)
            self.assertEqual(run("--pid", pid, "--mode", "bogus", "-o", self.path("y.stats")).returncode, 2)
            self.assertEqual(run("--pid", pid, "--format", "bogus", "-o", self.path("y.stats")).returncode, 2)
        self.assertEqual(os.listdir(self.tmp.name), [])


if __name__ == "__main__":
    common.main(globals())
