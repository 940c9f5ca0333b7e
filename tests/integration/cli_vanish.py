"""Targets that vanish (issue 20, part 7): many randomized trials, each bounded.

A target is SIGKILLed at a random moment while pyprofd attaches to it, reads its threads
and frames (`record` at 1000 Hz, `dump`), or while `record --subprocesses` follows a tree
whose children live 0-30 ms each. Every run must end by itself well within its bound (no
hang), never by a signal (no crash), with exit code 0 (the target went away while
recording: the profile of what was sampled is written) or 1 (it went away before it could
be attached or read: one line saying so), every stderr line a "pyprofd: " line, and a
profile that pstats opens whenever the exit code is 0 and samples were taken.
The seed is printed; PYPROFD_VANISH_SEED=N repeats a run, PYPROFD_VANISH_TRIALS=N
changes the number of trials of each kind (default 25)."""
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

CONFIG = {}
RECORD_TARGET = os.path.join(common.TARGETS, "record_target.py")
VANISH_TARGET = os.path.join(common.TARGETS, "vanish_target.py")
TRIALS = int(os.environ.get("PYPROFD_VANISH_TRIALS", "25"))
BOUND_S = 30  # no trial may take longer: a hang fails the test
SEED = int(os.environ.get("PYPROFD_VANISH_SEED", str(int(time.time()))))
print("PYPROFD_VANISH_SEED=%d" % SEED)


class Vanish(unittest.TestCase):
    def setUp(self):
        self.rng = random.Random(SEED + zlib.crc32(self.id().encode()))
        self.tmp = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.tmp)
        self.outcomes = {}
        self.messages = set()  # distinct first lines (numbers masked), printed for the record
        self.addCleanup(lambda: print("\n".join(sorted(self.messages))))

    def run_killing(self, target, args, delay):
        """Runs pyprofd with args; SIGKILLs the target `delay` s after pyprofd started."""
        proc = subprocess.Popen([CONFIG["pyprofd"]] + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        timer = threading.Timer(delay, lambda: target.proc.poll() is None and os.kill(target.pid, signal.SIGKILL))
        timer.start()
        try:
            out, err = proc.communicate(timeout=BOUND_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            self.fail("pyprofd %s hung (killed after %d s; target killed after %.3f s)" % (args, BOUND_S, delay))
        finally:
            timer.cancel()
        target.stop()
        return proc.returncode, out.decode(errors="replace"), err.decode(errors="replace")

    def check(self, rc, err, what):
        self.assertGreaterEqual(rc, 0, "%s: killed by signal %d\n%s" % (what, -rc, err))
        self.assertIn(rc, (0, 1), "%s\n%s" % (what, err))
        lines = err.strip().splitlines()
        self.assertTrue(lines, what)
        for line in lines:
            self.assertTrue(line.startswith("pyprofd: "), "%s: %r\n%s" % (what, line, err))
        for bad in ("Sanitizer", "terminate called", "Segmentation", "Aborted", "core dumped"):
            self.assertNotIn(bad, err, what)
        if rc == 1:
            self.assertRegex(err, r"(?m)no such process: \d+( \(it exited (while being attached|during the dump)\))?$|not written: no samples were recorded$", what)
        self.outcomes[rc] = self.outcomes.get(rc, 0) + 1
        self.messages.add(re.sub(r"\d+", "N", lines[0] if rc else lines[-1]))

    def test_record_target_killed_while_attaching_or_sampling(self):
        for trial in range(TRIALS):
            delay = self.rng.uniform(0, 0.02 if trial % 2 else 0.3)  # during attach, or while sampling
            out = os.path.join(self.tmp, "p%d.stats" % trial)
            with common.Target(CONFIG["python"], RECORD_TARGET, "threads", "60") as target:
                target.wait_ready()
                rc, _, err = self.run_killing(target, ["record", "--pid", str(target.pid), "--rate", "1000", "--idle",
                                                       "-o", out], delay)
            what = "record trial %d, kill after %.3f s" % (trial, delay)
            self.check(rc, err, what)
            if rc == 0 and re.search(r"recorded .*: [1-9]\d* samples", err):
                self.assertTrue(common.read_pstats(out, CONFIG["python"])[1], what)
        print("record outcomes (exit code: trials):", self.outcomes)

    def test_dump_target_killed(self):
        for trial in range(TRIALS):
            delay = self.rng.uniform(0, 0.05)
            with common.Target(CONFIG["python"], RECORD_TARGET, "threads", "60") as target:
                target.wait_ready()
                rc, out, err = self.run_killing(target, ["dump", "--pid", str(target.pid)], delay)
            what = "dump trial %d, kill after %.3f s" % (trial, delay)
            if rc == 0:
                self.assertIn("Thread", out, what)
                self.outcomes[0] = self.outcomes.get(0, 0) + 1
            else:
                self.check(rc, err, what)
        print("dump outcomes (exit code: trials):", self.outcomes)

    def test_subprocesses_tree_killed_while_followed(self):
        for trial in range(max(TRIALS // 3, 3)):
            delay = self.rng.uniform(0.2, 1.5)
            out = os.path.join(self.tmp, "t%d.stats" % trial)
            with common.Target(CONFIG["python"], VANISH_TARGET) as target:
                target.wait_ready()
                rc, _, err = self.run_killing(target, ["record", "--pid", str(target.pid), "--subprocesses",
                                                       "--rate", "1000", "-o", out], delay)
            what = "tree trial %d, kill after %.3f s" % (trial, delay)
            self.check(rc, err, what)
            if rc == 0 and re.search(r"recorded .*: [1-9]\d* samples", err):
                self.assertTrue(common.read_pstats(out, CONFIG["python"])[1], what)
        print("tree outcomes (exit code: trials):", self.outcomes)


if __name__ == "__main__":
    common.main(globals())
