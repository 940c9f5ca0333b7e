"""Respawn storm (issue 20, part 4): Debian's gunicorn (2 sync workers, 127.0.0.1) with
--max-requests 20, so under a bounded `ab` load every worker is replaced after ~20
requests (a few tenths of a second). `record --subprocesses` on the master for 6 s must
exit 0 and follow every worker: each worker the test saw alive for 0.4 s or more during
the recording must be in the pprof's `pid` labels (`go tool pprof -tags`), workers that
exited included (nothing sampled is lost), and the app's function must be there."""
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

CONFIG = {}
DIST_PACKAGES = "/usr/lib/python3/dist-packages"
SECONDS = int(os.environ.get("PYPROFD_RESPAWN_SECONDS", "6"))  # the 10 s run: RELIABILITY.md
MIN_LIFE_S = 0.4  # workers that lived at least this long must be in the profile


class WorkerWatch(threading.Thread):
    """Polls the master's children every 10 ms: {pid: [first seen, last seen]}."""

    def __init__(self, master):
        super().__init__(daemon=True)
        self.master, self.seen, self.done = master, {}, threading.Event()

    def run(self):
        while not self.done.is_set():
            now = time.monotonic()
            for pid in common.children(self.master):
                self.seen.setdefault(pid, [now, now])[1] = now
            time.sleep(0.01)


class RespawnStorm(unittest.TestCase):
    def test_every_new_worker_followed(self):
        if not os.path.isdir(os.path.join(DIST_PACKAGES, "gunicorn")) or not shutil.which("ab"):
            self.fail("Debian's gunicorn and ab are needed (tools/install-deps.sh installs them)")
        tmp = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, tmp)
        port = common.free_port()
        master = subprocess.Popen([CONFIG["python"], "-m", "gunicorn", "-w", "2", "-k", "sync", "-b",
                                   "127.0.0.1:%d" % port, "--max-requests", "20", "--chdir", common.TARGETS,
                                   "wsgi_app:app"], env=dict(os.environ, PYTHONPATH=DIST_PACKAGES),
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.addCleanup(common.terminate, master)

        def serving():
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    return len(common.children(master.pid)) == 2
            except OSError:
                return False
        common.wait_for(serving, 60, "gunicorn serving with 2 workers")

        watch = WorkerWatch(master.pid)
        watch.start()
        load = subprocess.Popen(["ab", "-q", "-n", "3000", "-c", "2", "-t", str(SECONDS + 2), "-s", "5", "-r",
                                 "http://127.0.0.1:%d/" % port], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.addCleanup(common.terminate, load)
        out = os.path.join(tmp, "storm.pb.gz")
        start = time.monotonic()
        res = common.run_pyprofd(CONFIG["pyprofd"], "record", "--pid", str(master.pid), "--subprocesses",
                                 "--duration", str(SECONDS), "-o", out, "-o", os.path.join(tmp, "storm.stats"),
                                 timeout=SECONDS + 60)
        end = time.monotonic()
        watch.done.set()
        watch.join()
        load.wait(timeout=60)
        err = res.stderr.decode(errors="replace")
        print(err)
        self.assertEqual(res.returncode, 0, err)

        during = {pid: (a, b) for pid, (a, b) in watch.seen.items() if b >= start and a <= end}
        long_lived = {pid for pid, (a, b) in during.items() if min(b, end) - max(a, start) >= MIN_LIFE_S}
        replaced = [pid for pid, (a, b) in during.items() if b < end - 0.05]
        print("workers during the recording: %d, replaced: %d, alive >= %.1f s: %d" %
              (len(during), len(replaced), MIN_LIFE_S, len(long_lived)))
        self.assertGreaterEqual(len(during), 6, "workers were not replaced: %s" % during)

        tags = common.pprof_tags(out, dict(os.environ, PPROF_TMPDIR=tmp))
        pids = {int(p) for p in tags.get("pid", ())}
        self.assertIn(master.pid, set(int(p) for p in re.search(r"processes: ([\d, ]+) \(", err).group(1).split(", ")))
        missing = long_lived - pids
        self.assertFalse(missing, "workers alive >= %.1f s but not in the profile: %s (%s)" %
                         (MIN_LIFE_S, sorted(missing), {p: during[p] for p in missing}))
        self.assertTrue(pids & set(replaced), "no replaced worker in the profile")
        _, stats = common.read_pstats(os.path.join(tmp, "storm.stats"), CONFIG["python"])
        self.assertGreater(common.by_name(stats, "burn_for_request")["nc"], 0)


if __name__ == "__main__":
    common.main(globals())
