"""Debian's gunicorn with 2 sync workers under `ab` load, recorded through the
master's pid with --subprocesses: the app's function and both workers' pids are in
the result."""
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

CONFIG = {}
DIST_PACKAGES = "/usr/lib/python3/dist-packages"


class GunicornTest(unittest.TestCase):
    def test_master_and_workers(self):
        if not os.path.isdir(os.path.join(DIST_PACKAGES, "gunicorn")):
            self.fail("Debian's gunicorn is not installed (tools/install-deps.sh installs it)")
        port = common.free_port()
        env = dict(os.environ, PYTHONPATH=DIST_PACKAGES)
        master = subprocess.Popen([CONFIG["python"], "-m", "gunicorn", "-w", "2", "-k", "sync", "-b",
                                   "127.0.0.1:%d" % port, "--chdir", common.TARGETS, "wsgi_app:app"],
                                  env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.addCleanup(common.terminate, master)
        # Ready when the port answers and both workers exist (polled, bounded).
        deadline = time.monotonic() + 60
        while True:
            self.assertIsNone(master.poll(), master.stderr.read().decode(errors="replace") if master.poll() else "")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    pass
                if len(common.children(master.pid)) == 2:
                    break
            except OSError:
                pass
            self.assertLess(time.monotonic(), deadline, "gunicorn did not start")
            time.sleep(0.05)
        workers = common.children(master.pid)

        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        path = os.path.join(tmp.name, "gunicorn.stats")
        load = subprocess.Popen(["ab", "-q", "-n", "100000", "-c", "4", "-t", "6", "-s", "5",
                                 "http://127.0.0.1:%d/" % port], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.addCleanup(common.terminate, load)
        res = common.run_pyprofd(CONFIG["pyprofd"], "record", "--pid", str(master.pid), "--subprocesses",
                                 "--duration", "3", "-o", path)
        load.wait(timeout=60)
        err = res.stderr.decode(errors="replace")
        self.assertEqual(res.returncode, 0, err)
        _, stats = common.read_pstats(path, CONFIG["python"])
        handle = common.by_name(stats, "burn_for_request")
        self.assertGreater(handle["tt"], 0.3, "workers were busy in burn_for_request")
        listed = set(int(p) for p in re.search(r"processes: ([\d, ]+) \(", err).group(1).split(", "))
        self.assertIn(master.pid, listed)
        for w in workers:
            self.assertIn(w, listed, err)


if __name__ == "__main__":
    common.main(globals())
