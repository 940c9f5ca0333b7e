"""`pyprofd daemon --max-cpu`: on six busy targets (wall mode) at a rate that costs far more than the
budget, the daemon lowers its rate (logged, and the achieved rate in /metrics drops)
and its own CPU, measured from /metrics, comes down near the budget; when the load drops
(the targets are killed) the rate goes back up, and when the budget is lifted in the
--config file and SIGHUP sent, the full rate comes back at once. The thresholds are loose on purpose (a
shared 2-core machine): they tell a working budget from none."""
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

CONFIG = {}
SCRIPT = os.path.join(common.TARGETS, "daemon_target.py")


class BudgetTest(unittest.TestCase):
    def end(self, p):
        if p.poll() is None:
            os.kill(p.pid, signal.SIGKILL)
        p.communicate(timeout=30)

    def metrics(self):
        with urllib.request.urlopen(self.base + "/metrics", timeout=10) as r:
            text = r.read().decode()
        return {m.group(1): float(m.group(2)) for m in re.finditer(r"^(pyprofd_\w+) (\S+)$", text, re.M)}

    def cpu_over(self, seconds):
        m0, t0 = self.metrics(), time.monotonic()
        time.sleep(seconds)
        m1, t1 = self.metrics(), time.monotonic()
        return 100 * (m1["pyprofd_cpu_seconds_total"] - m0["pyprofd_cpu_seconds_total"]) / (t1 - t0), \
            (m1["pyprofd_ticks_total"] - m0["pyprofd_ticks_total"]) / (t1 - t0)

    def test_budget(self):
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        tag = "budget-" + uuid.uuid4().hex
        targets = []
        for _ in range(6):  # the per-tick cost is mostly theirs: it drops when they go
            t = subprocess.Popen([CONFIG["python"], SCRIPT, tag], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
            self.addCleanup(self.end, t)
            self.assertTrue(t.stdout.readline().startswith(b"ready"))
            targets.append(t)
        log = os.path.join(tmp.name, "daemon.log")
        conf = os.path.join(tmp.name, "pyprofd.conf")
        with open(conf, "w") as f:
            f.write("max-cpu = 2\nrate = 3000\n")
        daemon = subprocess.Popen([CONFIG["pyprofd"], "daemon", "--match", tag, "--mode", "wall",
                                   "--config", conf, "--listen", "127.0.0.1:0", "--log-file", log],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.addCleanup(self.end, daemon)
        for _ in range(200):
            m = os.path.exists(log) and re.search(r"listening on (http://127\.0\.0\.1:\d+)", open(log).read())
            if m:
                break
            time.sleep(0.05)
        self.base = m.group(1)
        time.sleep(8)  # a few 2-second budget steps
        cpu, rate = self.cpu_over(4)
        self.assertIn("--max-cpu 2 %: sampling at", open(log).read())
        self.assertLess(rate, 1500, "the rate must drop well below --rate 3000")
        self.assertLess(cpu, 6, "the daemon's CPU must come near the 2 % budget")
        for t in targets:  # the load drops: the rate climbs back
            self.end(t)
        time.sleep(10)
        _, rate_after = self.cpu_over(4)
        self.assertGreater(rate_after, 1.3 * rate)
        # The budget lifted in the config file, SIGHUP: back to the full rate at once.
        with open(conf, "w") as f:
            f.write("max-cpu = 0\nrate = 3000\n")
        daemon.send_signal(signal.SIGHUP)
        time.sleep(1)
        _, rate_free = self.cpu_over(3)
        self.assertIn("applied: rate 3000 Hz, --max-cpu 0 %", open(log).read())
        self.assertGreater(rate_free, 1.3 * rate_after)
        daemon.send_signal(signal.SIGTERM)
        _, err = daemon.communicate(timeout=30)
        self.assertEqual(daemon.returncode, 0, err)


if __name__ == "__main__":
    common.main(globals())
