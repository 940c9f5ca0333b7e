"""`pyprofd daemon --config FILE`, SIGHUP: the targets change live. Started on `match = A`
with --subprocesses, the daemon samples A and the child A started; the file is rewritten
to `match = B` and SIGHUP sent: A and its child are no longer sampled (logged, gone from
/targets, absent from a profile taken afterwards), B is; a config with no target is
refused and the running selection kept."""
import json
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
from common import wait_for  # noqa: E402

CONFIG = {}
SCRIPT = os.path.join(common.TARGETS, "daemon_target.py")
# A parent whose child's command line does not match: followed only through --subprocesses.
PARENT = ("import subprocess, sys; k = subprocess.Popen([sys.executable, sys.argv[1], 'child']); "
          "print('ready', k.pid, flush=True); k.wait()")


def get(url):
    with urllib.request.urlopen(url, timeout=30) as r:
        return r.read()


def read(path):
    with open(path) as f:
        return f.read()


class ReloadTest(unittest.TestCase):
    def end(self, p):
        if p.poll() is None:
            os.kill(p.pid, signal.SIGKILL)
        p.wait(timeout=30)
        for f in (p.stdout, p.stderr):
            if f:
                f.close()

    def kill_pid(self, pid):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def start(self, argv):
        p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self.addCleanup(self.end, p)
        line = p.stdout.readline().split()
        self.assertEqual(line[:1], [b"ready"])
        return p, line

    def target_pids(self):
        return {t["pid"] for t in json.loads(get(self.base + "/targets"))}

    def test_sighup_changes_targets(self):
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        tag = uuid.uuid4().hex
        a, line = self.start([CONFIG["python"], "-c", PARENT, SCRIPT, "reload-a-" + tag])
        child = int(line[1])
        self.addCleanup(self.kill_pid, child)  # ours: started by the parent we started
        # The child prints its own "ready" line to the same pipe; the parent is ready once both are.
        self.assertTrue(a.stdout.readline().startswith(b"ready"))
        b, _ = self.start([CONFIG["python"], SCRIPT, "reload-b-" + tag])
        log = os.path.join(tmp.name, "daemon.log")
        conf = os.path.join(tmp.name, "pyprofd.conf")
        with open(conf, "w") as f:
            f.write("match = reload-a-%s\n" % tag)
        daemon = subprocess.Popen([CONFIG["pyprofd"], "daemon", "--config", conf, "--subprocesses", "--mode", "wall",
                                   "--max-cpu", "0", "--listen", "127.0.0.1:0", "--log-file", log],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.addCleanup(self.end, daemon)
        self.base = wait_for(lambda: os.path.exists(log) and re.search(r"listening on (http://127\.0\.0\.1:\d+)",
                                                                     read(log)), 10, "the listening line").group(1)
        wait_for(lambda: self.target_pids() == {a.pid, child}, 15, "A and its child on /targets")

        with open(conf, "w") as f:
            f.write("match = reload-b-%s\n" % tag)
        daemon.send_signal(signal.SIGHUP)
        wait_for(lambda: self.target_pids() == {b.pid}, 15, "only B on /targets")
        text = read(log)
        self.assertIn("targets --match reload-b-%s" % tag, text)
        self.assertIn("process %d is no longer selected; it and 1 followed from it no longer sampled" % a.pid, text)
        self.assertNotIn("process %d exited" % a.pid, text)

        # A profile taken now holds B's samples only (its samples carry a pid label).
        prof = os.path.join(tmp.name, "after.pb.gz")
        with open(prof, "wb") as f:
            f.write(get(self.base + "/debug/pprof/profile?seconds=2"))
        tags = subprocess.run(["go", "tool", "pprof", "-tags", prof], capture_output=True, text=True, timeout=120)
        self.assertEqual(tags.returncode, 0, tags.stderr)
        section = tags.stdout.split(" pid:", 1)[1].split("\n\n", 1)[0]
        pids = set(int(x) for x in re.findall(r"%\):\s*(\d+)", section))
        self.assertEqual(pids, {b.pid}, tags.stdout)

        # A config without a target is refused; the selection stays.
        with open(conf, "w") as f:
            f.write("rate = 50\n")
        daemon.send_signal(signal.SIGHUP)
        wait_for(lambda: "not applied" in read(log), 10, "the refusal")
        self.assertEqual(self.target_pids(), {b.pid})
        daemon.send_signal(signal.SIGTERM)
        _, err = daemon.communicate(timeout=30)
        self.assertEqual(daemon.returncode, 0, err)


if __name__ == "__main__":
    common.main(globals())
