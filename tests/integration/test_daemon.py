"""`pyprofd daemon` against a real interpreter: --match picks up a target started
after it (and again after a restart) and logs a matching non-Python process once, 2-second windows appear in --dir and rotate
to --keep 3 with no temp files left, each loads in `go tool pprof`; the live
/debug/pprof/profile URL works with `go tool pprof` (20 slow clients at once: 4 get
429, /metrics still answers and sampling keeps its rate), /recent answers at once,
/metrics passes promtool and its counters only grow; SIGUSR1 writes a snapshot and
SIGTERM writes the last window and exits 0; SIGHUP reopens the log."""
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
from common import wait_for  # noqa: E402

CONFIG = {}
SCRIPT = os.path.join(common.TARGETS, "daemon_target.py")


def get(url, timeout=10):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.status, r.read()


def counters(text):
    return {m.group(1): float(m.group(2)) for m in re.finditer(r"^(pyprofd_\w+_total) (\S+)$", text, re.M)}


class DaemonTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self.tmp.cleanup)
        self.dir = os.path.join(self.tmp.name, "windows")
        os.mkdir(self.dir)
        self.log = os.path.join(self.tmp.name, "daemon.log")
        self.tag = "daemon-test-" + uuid.uuid4().hex

    def start_target(self):
        p = subprocess.Popen([CONFIG["python"], SCRIPT, self.tag], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self.addCleanup(self.end, p)
        self.assertTrue(p.stdout.readline().startswith(b"ready"))
        return p

    def end(self, p):
        if p.poll() is None:
            os.kill(p.pid, signal.SIGKILL)
        p.wait(timeout=30)
        for pipe in (p.stdout, p.stderr):
            if pipe:
                pipe.close()

    def log_text(self):
        with open(self.log, errors="replace") as f:
            return f.read()

    def go_top(self, source):
        # PPROF_TMPDIR: where pprof saves a fetched profile (else ~/pprof).
        env = dict(os.environ, PPROF_TMPDIR=self.tmp.name)
        res = subprocess.run(["go", "tool", "pprof", "-top", source], capture_output=True, timeout=60, env=env)
        self.assertEqual(res.returncode, 0, res.stderr)
        return res.stdout.decode(errors="replace")

    def pprof_files(self):
        return sorted(f for f in os.listdir(self.dir) if f.endswith(".pb.gz"))

    def start_daemon(self, *args, env=None):
        """The daemon with args, listening on a free loopback port and logging to self.log: (process, base URL)."""
        daemon = subprocess.Popen([CONFIG["pyprofd"], "daemon", *args, "--listen", "127.0.0.1:0", "--log-file", self.log],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
        self.addCleanup(self.end, daemon)
        port = wait_for(lambda: os.path.exists(self.log) and re.search(r"listening on http://127\.0\.0\.1:(\d+)",
                                                                       self.log_text()), 10, "the listening line")
        return daemon, "http://127.0.0.1:%s" % port.group(1)

    def start_non_python(self):
        """A process whose command line holds the tag but that is not Python: sh waiting in its
        `read` builtin (one process, no child left behind by the kill)."""
        other = subprocess.Popen(["/bin/sh", "-c", "read x", self.tag], stdin=subprocess.PIPE,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.addCleanup(other.stdin.close)
        self.addCleanup(self.end, other)
        return other

    def test_daemon(self):
        # A temp file left by a daemon that died while writing goes with the first prune.
        dead = subprocess.Popen(["true"])
        dead.wait()
        stale = os.path.join(self.dir, ".svc-20200101T000000Z.pb.gz.tmp.%d.0" % dead.pid)
        open(stale, "w").close()
        daemon, base = self.start_daemon("--match", self.tag, "--window", "2", "--keep", "3", "--max-cpu", "0",
                                         "--dir", self.dir, "--app-name", "svc", "--label", "env=test")
        self.assertEqual(get(base + "/healthz")[0], 200)

        # A matching process that is not Python: logged once, never stops the daemon.
        other = self.start_non_python()

        # A target started after the daemon is picked up within ~2 s.
        t1 = self.start_target()
        started = time.monotonic()
        wait_for(lambda: "attached process %d " % t1.pid in self.log_text(), 3, "attach of %d" % t1.pid)
        self.assertLess(time.monotonic() - started, 2.5)

        # go tool pprof reads the live profile URL.
        top = self.go_top(base + "/debug/pprof/profile?seconds=2")
        self.assertIn("daemon_hot", top)
        _, body = get(base + "/debug/pprof/profile?seconds=1&format=collapsed")
        self.assertIn(b"daemon_hot", body)
        with self.assertRaises(urllib.error.HTTPError) as bad:
            get(base + "/debug/pprof/profile?seconds=abc")
        self.assertEqual(bad.exception.code, 400)

        # Many slow clients: the extra ones get 429, /metrics still answers at once and
        # sampling keeps its rate.
        codes = []

        def slow_client():
            try:
                codes.append(get(base + "/debug/pprof/profile?seconds=2", timeout=30)[0])
            except urllib.error.HTTPError as e:
                codes.append(e.code)
        def rate_of(metrics):  # ticks per second achieved since the previous /metrics
            return float(re.search(r"^pyprofd_sampling_rate_hertz (\S+)$", metrics.decode(), re.M).group(1))
        before = rate_of(get(base + "/metrics")[1])
        clients = [threading.Thread(target=slow_client) for _ in range(20)]
        for c in clients:
            c.start()
        time.sleep(0.5)
        t0 = time.monotonic()
        _, during = get(base + "/metrics")
        self.assertLess(time.monotonic() - t0, 1.0)
        for c in clients:
            c.join()
        self.assertEqual(sorted(codes), [200] * 16 + [429] * 4)
        # No budget (--max-cpu 0): the requested 100 Hz, give or take, before and during the
        # clients; compared with the rate before them, as a loaded machine misses ticks.
        self.assertGreater(rate_of(during), 0.5 * before, "before the clients: %.1f Hz" % before)

        _, metrics1 = get(base + "/metrics")
        check = subprocess.run(["promtool", "check", "metrics"], input=metrics1, capture_output=True, timeout=30)
        self.assertEqual(check.returncode, 0, check.stdout + check.stderr)
        c = counters(metrics1.decode())
        self.assertLessEqual(c["pyprofd_idle_process_ticks_skipped_by_switch_records_total"],
                             c["pyprofd_idle_process_ticks_skipped_total"])

        # /recent answers at once with the last completed windows.
        wait_for(lambda: self.pprof_files(), 5, "a window file")
        t0 = time.monotonic()
        status, recent = get(base + "/debug/pprof/recent?windows=2")
        self.assertLess(time.monotonic() - t0, 1.0)
        self.assertEqual(status, 200)
        recent_path = os.path.join(self.tmp.name, "recent.pb.gz")
        with open(recent_path, "wb") as f:
            f.write(recent)
        self.assertIn("daemon_hot", self.go_top(recent_path))

        # A killed and restarted target is profiled again.
        self.end(t1)
        wait_for(lambda: "process %d exited" % t1.pid in self.log_text(), 3, "exit of %d" % t1.pid)
        t2 = self.start_target()
        wait_for(lambda: "attached process %d " % t2.pid in self.log_text(), 3, "attach of %d" % t2.pid)

        # Rotation: at least 4 windows written, 3 kept, no temp files.
        wait_for(lambda: counters(get(base + "/metrics")[1].decode())["pyprofd_windows_written_total"] >= 4, 12,
                 "4 windows written")
        names = os.listdir(self.dir)
        self.assertEqual(len(names), 3, names)  # neither older windows nor temp files
        # Copied at once: the next window (2 s) prunes the oldest while go tool pprof reads.
        copies = []
        for name in names:
            self.assertRegex(name, r"^svc-\d{8}T\d{6}Z\.pb\.gz$")
            try:
                with open(os.path.join(self.dir, name), "rb") as src:
                    data = src.read()
            except FileNotFoundError:
                continue  # pruned between listdir and open (a window ended just then)
            copies.append(os.path.join(self.tmp.name, "copy-" + name))
            with open(copies[-1], "wb") as dst:
                dst.write(data)
        self.assertGreaterEqual(len(copies), 2)
        for path in copies:
            self.assertIn("daemon_hot", self.go_top(path))
        _, metrics2 = get(base + "/metrics")
        c1, c2 = counters(metrics1.decode()), counters(metrics2.decode())
        for name, value in c1.items():
            self.assertGreaterEqual(c2[name], value, name)
        self.assertGreater(c2["pyprofd_samples_total"], c1["pyprofd_samples_total"])

        self.assertEqual(self.log_text().count("process %d not attached" % other.pid), 1, self.log_text())
        _, targets = get(base + "/targets")
        states = {t["pid"]: t for t in json.loads(targets)}
        self.assertEqual(states[t2.pid]["state"], "sampling")
        self.assertGreater(states[t2.pid]["samples"], 0)
        self.assertLess(abs(states[t2.pid]["first_sample"] - time.time()), 120)  # Unix seconds, this run's
        self.assertIn("not a Python process", states[other.pid]["state"])
        self.assertIsNone(states[other.pid]["first_sample"])

        # SIGHUP reopens the log file (moved away, as logrotate does).
        os.rename(self.log, self.log + ".1")
        daemon.send_signal(signal.SIGHUP)
        wait_for(lambda: os.path.exists(self.log) and "SIGHUP: log reopened" in self.log_text(), 3, "the new log")

        # SIGUSR1 writes the current window now; SIGTERM the last one, then exit 0.
        before = self.log_text().count("wrote ")
        daemon.send_signal(signal.SIGUSR1)
        wait_for(lambda: self.log_text().count("wrote ") > before, 3, "the SIGUSR1 snapshot")
        daemon.send_signal(signal.SIGTERM)
        _, err = daemon.communicate(timeout=30)
        self.assertEqual(daemon.returncode, 0, err)
        self.assertIn("stopping: writing the last window", self.log_text())
        newest = self.pprof_files()[-1]
        self.assertIn("wrote %s" % os.path.join(self.dir, newest), self.log_text().splitlines()[-2])
        self.assertLessEqual(len(os.listdir(self.dir)), 3)
        self.assertIsNone(t2.poll(), "the target must keep running")

    def test_idle_skips_on_switch_records(self):
        # cpu mode on an idle target: its ticks are skipped, on context-switch records when
        # they are taken (PYPROFD_SWITCH_EVENTS=1), and /metrics says how many.
        idle = subprocess.Popen([CONFIG["python"], "-c", "import time; time.sleep(120)"])
        self.addCleanup(self.end, idle)
        time.sleep(0.5)
        env = dict(os.environ, PYPROFD_SWITCH_EVENTS="1")
        daemon, base = self.start_daemon("--pid", str(idle.pid), "--mode", "cpu", "--max-cpu", "0", env=env)
        wait_for(lambda: "attached process %d " % idle.pid in self.log_text(), 5, "attach of %d" % idle.pid)
        refused = re.search(r"context-switch events: (.*)", self.log_text())
        if refused:
            self.skipTest("context-switch records unavailable here: " + refused.group(1))
        name = "pyprofd_idle_process_ticks_skipped_by_switch_records_total"
        c = wait_for(lambda: (lambda c: c if c[name] >= 50 else None)(counters(get(base + "/metrics")[1].decode())), 10,
                     "50 ticks skipped on the records")
        self.assertLessEqual(c[name], c["pyprofd_idle_process_ticks_skipped_total"])
        self.assertIn("on-CPU state from context-switch records", self.log_text())

    def test_all(self):
        """--all: every Python process it may read; one that exits is dropped, one started later
        attached at the next rescan, a non-Python process neither attached nor listed."""
        daemon, base = self.start_daemon("--all", "--window", "60", "--max-cpu", "0", "--log-level", "debug")
        other = self.start_non_python()
        t1 = self.start_target()
        # Generous waits: under --all a rescan also attaches every other Python process of
        # a busy machine (CI runs tests side by side).
        wait_for(lambda: "attached process %d " % t1.pid in self.log_text(), 20, "attach of %d" % t1.pid)
        self.end(t1)
        wait_for(lambda: "process %d exited" % t1.pid in self.log_text(), 20, "drop of %d" % t1.pid)
        t2 = self.start_target()
        wait_for(lambda: "attached process %d " % t2.pid in self.log_text(), 20, "attach of %d" % t2.pid)

        def sampled():
            states = {t["pid"]: t for t in json.loads(get(base + "/targets")[1])}
            return t2.pid in states and states[t2.pid]["samples"] > 0 and states
        states = wait_for(sampled, 20, "samples of %d" % t2.pid)
        self.assertNotIn(t1.pid, states)
        self.assertNotIn(other.pid, states)
        self.assertEqual(states[t2.pid]["state"], "sampling")
        self.assertIn("process %d not attached" % other.pid, self.log_text())  # debug: quiet under --all
        daemon.send_signal(signal.SIGTERM)
        _, err = daemon.communicate(timeout=30)
        self.assertEqual(daemon.returncode, 0, err)


if __name__ == "__main__":
    common.main(globals())
