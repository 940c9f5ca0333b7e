"""`pyprofd record --subprocesses`: children are attached as they appear and dropped
when they exit; a killed child's replacement is found too."""
import json
import os
import re
import signal
import subprocess
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


if __name__ == "__main__":
    common.main(globals())
