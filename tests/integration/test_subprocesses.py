"""`pyprofd record --subprocesses`: children are attached as they appear and dropped
when they exit; a killed child's replacement is found too."""
import json
import os
import re
import signal
import subprocess
import time
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

CONFIG = {}


def kill_quietly(pid):
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


class SubprocessesTest(unittest.TestCase):
    def test_children_and_replacement(self):
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        merged = os.path.join(tmp.name, "all.stats")
        per_pid = os.path.join(tmp.name, "proc.{pid}.stats")
        with common.Target(CONFIG["python"], os.path.join(common.TARGETS, "tree_target.py")) as t:
            kids = json.loads(t.wait_ready())
            for pid in kids.values():
                self.addCleanup(kill_quietly, pid)
            rec = subprocess.Popen([CONFIG["pyprofd"], "record", "--pid", str(t.pid), "--subprocesses",
                                    "--duration", "4", "-o", merged, "-o", per_pid],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            t.release()  # "go": beta is killed and replaced 1.5 s from now
            gamma = json.loads(t.wait_ready())["gamma"]
            self.addCleanup(kill_quietly, gamma)
            out, err = rec.communicate(timeout=120)
        err = err.decode(errors="replace")
        self.assertEqual(rec.returncode, 0, err)
        _, stats = common.read_pstats(merged, CONFIG["python"])
        names = {k[2] for k in stats}
        for fn in ("child_alpha", "child_beta", "child_gamma"):
            self.assertIn(fn, names, err)
        listed = set(int(p) for p in re.search(r"processes: ([\d, ]+) \(", err).group(1).split(", "))
        for pid in (kids["alpha"], kids["beta"], gamma):
            self.assertIn(pid, listed, err)
        # One file per process with {pid}: each child's file holds its own function only.
        for name, pid in (("alpha", kids["alpha"]), ("beta", kids["beta"]), ("gamma", gamma)):
            _, own = common.read_pstats(per_pid.replace("{pid}", str(pid)), CONFIG["python"])
            fns = {k[2] for k in own}
            self.assertIn("child_" + name, fns)
            self.assertEqual({f for f in fns if f.startswith("child_")}, {"child_" + name})

    def assert_attached_once_per_image(self, log_text, pid):
        # Logged attached once; again only after a drop: a child caught between its fork
        # and its exec is the parent's image, dropped at the exec and attached anew (seen
        # on the slow ASan build).
        events = [l for l in log_text.splitlines()
                  if ("attached process %d " % pid) in l or l.endswith("dropped process %d" % pid)]
        self.assertTrue(events and "attached" in events[0], log_text)
        for a, b in zip(events, events[1:]):
            self.assertFalse("attached" in a and "attached" in b, log_text)

    def test_daemon_follows_the_tree(self):
        # The daemon (attaching on its scanning thread) follows the tree: each child is
        # logged once, the replacement is picked up, and every child is sampled.
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        log = os.path.join(tmp.name, "daemon.log")
        with common.Target(CONFIG["python"], os.path.join(common.TARGETS, "tree_target.py")) as t:
            kids = json.loads(t.wait_ready())
            for pid in kids.values():
                self.addCleanup(kill_quietly, pid)
            daemon = subprocess.Popen([CONFIG["pyprofd"], "daemon", "--pid", str(t.pid), "--subprocesses",
                                       "--window", "60", "--dir", tmp.name, "--log-file", log],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            self.addCleanup(kill_quietly, daemon.pid)

            def text():
                if not os.path.exists(log):
                    return ""
                with open(log) as f:
                    return f.read()
            end = time.monotonic() + 10
            while time.monotonic() < end and not all("attached process %d " % p in text() for p in kids.values()):
                time.sleep(0.05)
            t.release()
            gamma = json.loads(t.wait_ready())["gamma"]
            self.addCleanup(kill_quietly, gamma)
            end = time.monotonic() + 10
            while time.monotonic() < end and "attached process %d " % gamma not in text():
                time.sleep(0.05)
            time.sleep(2)  # gamma past its imports, in child_gamma
            daemon.send_signal(signal.SIGTERM)
            _, err = daemon.communicate(timeout=60)
        self.assertEqual(daemon.returncode, 0, err)
        log_text = text()
        for pid in (kids["alpha"], kids["beta"], gamma):
            self.assert_attached_once_per_image(log_text, pid)
        files = sorted(f for f in os.listdir(tmp.name) if f.endswith(".pb.gz"))
        self.assertIn(len(files), (1, 2), files)  # two when the run crossed a minute (windows follow the clock)
        top = subprocess.run(["go", "tool", "pprof", "-top"] + [os.path.join(tmp.name, f) for f in files],
                             capture_output=True, timeout=60, env=dict(os.environ, PPROF_TMPDIR=tmp.name))
        self.assertEqual(top.returncode, 0, top.stderr)
        for fn in ("child_alpha", "child_gamma"):
            self.assertIn(fn, top.stdout.decode())


if __name__ == "__main__":
    common.main(globals())
