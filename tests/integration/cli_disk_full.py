"""Faults around output (issue 20, part 6), on tiny tmpfs mounts in a private mount
namespace (`unshare -m`, so nothing leaks to the host; skipped by name when not root or
when the kernel refuses).

record: an output that does not fit the disk fails with one clear line and a non-zero
exit, leaves no partial or temp file and does not touch the file it would have replaced;
the run's other outputs (same disk where they fit, another disk) are written whole.

daemon: --dir made read-only, then removed, mid-run: each failure is logged, the windows
stay in memory and are written at a later window, so no window is missing in the end,
and /metrics counts what happened."""
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

CONFIG = {}
RECORD_TARGET = os.path.join(common.TARGETS, "record_target.py")


def read(path):
    with open(path, errors="replace") as f:
        return f.read()


def private_mounts_work():
    if os.geteuid() != 0 or not shutil.which("unshare"):
        return "needs root and unshare"
    res = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c",
                          "d=$(mktemp -d) && mount -t tmpfs -o size=8k tmpfs $d && umount $d && rmdir $d"],
                         capture_output=True, timeout=30)
    if res.returncode != 0:
        return "the kernel refused a private tmpfs mount: " + res.stderr.decode(errors="replace").strip()
    return None


class PrivateMountCase(unittest.TestCase):
    """Skipped, by name, where the kernel refuses a private tmpfs."""

    @classmethod
    def setUpClass(cls):
        why = private_mounts_work()
        if why:
            print("SKIPPED cli_disk_full.%s: %s" % (cls.__name__, why))
            raise unittest.SkipTest(why)


class RecordDiskFull(PrivateMountCase):

    def test_full_disk_fails_one_output_cleanly(self):
        tmp = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, tmp)
        tiny, outside = os.path.join(tmp, "tiny"), os.path.join(tmp, "outside")
        os.mkdir(tiny)
        os.mkdir(outside)
        # 12 KiB = 3 pages: the old flame graph (1 page) and the call graph pruned to its
        # top node (~1.5 KiB) fit; the flame graph of a 200-deep recursion (~70 KiB) does not.
        script = """
set -e
mount -t tmpfs -o size=12k,mode=0755 tmpfs "$TINY"
echo old > "$TINY/p.svg"
set +e
"$PYPROFD" record --rate 200 --min-node 50 --min-edge 50 -o "$TINY/p.svg" -o "$TINY/p.dot" \
    -o "$OUTSIDE/p.stats" -- "$PYTHON" "$TARGET" -1 -1 recurse 2 2>"$OUTSIDE/stderr"
echo $? > "$OUTSIDE/rc"
ls -A "$TINY" > "$OUTSIDE/listing"
cp "$TINY/p.dot" "$TINY/p.svg" "$OUTSIDE/" || true
"""
        env = dict(os.environ, TINY=tiny, OUTSIDE=outside, PYPROFD=CONFIG["pyprofd"], PYTHON=CONFIG["python"],
                   TARGET=RECORD_TARGET)
        res = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", script], env=env,
                             capture_output=True, timeout=120)
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertEqual(os.listdir(tiny), [], "the tmpfs leaked out of its namespace")
        err = read(os.path.join(outside, "stderr"))
        rc = int(read(os.path.join(outside, "rc")))
        self.assertEqual(rc, 1, err)
        errors = [l for l in err.splitlines() if "p.svg" in l and "wrote" not in l]
        self.assertEqual(len(errors), 1, err)
        self.assertRegex(errors[0], r"^pyprofd: cannot write .*/tiny/p\.svg: No space left on device$")
        # No temp file or partial profile; the old file stands; the others are whole.
        self.assertEqual(sorted(read(os.path.join(outside, "listing")).split()), ["p.dot", "p.svg"])
        self.assertEqual(read(os.path.join(outside, "p.svg")), "old\n")
        self.assertIn("wrote %s/p.dot" % tiny, err)
        self.assertIn("wrote %s/p.stats" % outside, err)
        dot = read(os.path.join(outside, "p.dot"))
        self.assertTrue(dot.startswith("digraph") and dot.rstrip().endswith("}"), dot)
        self.assertIn("recurse", dot)
        stats = common.read_pstats(os.path.join(outside, "p.stats"), CONFIG["python"])[1]
        self.assertTrue(any(name == "recurse" for (_, _, name) in stats), list(stats)[:10])


class DaemonDirFaults(PrivateMountCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.tmp)
        self.target = common.Target(CONFIG["python"], RECORD_TARGET, "forever")
        self.addCleanup(self.target.stop)
        self.target.wait_ready()

    def start_daemon(self, mnt):
        self.log = os.path.join(self.tmp, "daemon.log")
        script = 'mount -t tmpfs -o size=4m tmpfs "$MNT" && mkdir "$MNT/out" && exec "$PYPROFD" "$@"'
        args = ["daemon", "--pid", str(self.target.pid), "--window", "1", "--dir", mnt + "/out",
                "--formats", "collapsed", "--keep", "1000", "--max-cpu", "0", "--listen", "127.0.0.1:0",
                "--log-file", self.log]
        proc = subprocess.Popen(["unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh"] + args,
                                env=dict(os.environ, MNT=mnt, PYPROFD=CONFIG["pyprofd"]),
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.addCleanup(self.end, proc)
        port = common.wait_for(lambda: self.port(), 30, "the daemon's listening line")
        return proc, "http://127.0.0.1:%d" % port

    def end(self, proc):
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)

    def port(self):
        m = re.search(r"listening on http://127\.0\.0\.1:(\d+)", self.read_log())
        return int(m.group(1)) if m else None

    def read_log(self):
        try:
            return read(self.log)
        except FileNotFoundError:
            return ""

    def metrics(self, base):
        with urllib.request.urlopen(base + "/metrics", timeout=10) as r:
            text = r.read().decode()
        return {m.group(1): float(m.group(2)) for m in re.finditer(r"^(pyprofd_\w+) (\S+)$", text, re.M)}

    def stamps(self, out):
        try:
            names = os.listdir(out)
        except FileNotFoundError:
            return []
        return sorted(re.match(r"pyprofd-(\d{8}T\d{6}Z)\.folded$", n).group(1) for n in names
                      if re.match(r"pyprofd-\d{8}T\d{6}Z\.folded$", n))

    def nsenter(self, proc, *cmd):
        subprocess.run(["nsenter", "-t", str(proc.pid), "-m", "--"] + list(cmd), check=True, timeout=30)

    def assertNoGap(self, stamps):
        secs = [time.mktime(time.strptime(st, "%Y%m%dT%H%M%SZ")) for st in stamps]
        self.assertEqual([b - a for a, b in zip(secs, secs[1:])], [1.0] * (len(secs) - 1), stamps)

    def test_read_only_then_removed_dir_loses_no_window(self):
        mnt = os.path.join(self.tmp, "mnt")
        os.mkdir(mnt)
        proc, base = self.start_daemon(mnt)
        out = "/proc/%d/root%s/out" % (proc.pid, mnt)  # the daemon's view of its tmpfs
        common.wait_for(lambda: len(self.stamps(out)) >= 2, 30, "two windows written")

        # Read-only for two windows or more: logged, kept, written once writable again.
        self.nsenter(proc, "mount", "-o", "remount,ro", mnt)
        common.wait_for(lambda: self.read_log().count("Read-only file system") >= 2, 30, "two failed windows logged")
        self.assertGreaterEqual(self.metrics(base)["pyprofd_windows_pending"], 1)
        self.nsenter(proc, "mount", "-o", "remount,rw", mnt)
        common.wait_for(lambda: "on a later try" in self.read_log(), 30, "the kept windows written")
        common.wait_for(lambda: self.metrics(base)["pyprofd_windows_pending"] == 0, 10, "nothing pending")
        before = self.stamps(out)
        self.assertNoGap(before)
        log = self.read_log()
        failed = set(re.findall(r"pyprofd-(\d{8}T\d{6}Z)\.folded: Read-only file system", log))
        self.assertGreaterEqual(len(failed), 2, log)
        self.assertTrue(failed <= set(before), (failed, before))

        # Removed: the next window makes the folder again (private mode) and goes on.
        shutil.rmtree(out)
        common.wait_for(lambda: "was removed; created it again" in self.read_log(), 30, "the folder recreated")
        common.wait_for(lambda: len(self.stamps(out)) >= 3, 30, "windows written into the new folder")
        after = self.stamps(out)
        self.assertNoGap(after)
        self.assertLessEqual(time.mktime(time.strptime(after[0], "%Y%m%dT%H%M%SZ")) -
                             time.mktime(time.strptime(before[-1], "%Y%m%dT%H%M%SZ")), 2, (before, after))
        self.assertEqual(os.stat(out).st_mode & 0o777, 0o700)
        with open(os.path.join(out, "pyprofd-%s.folded" % after[1])) as f:
            self.assertIn("forever", f.read())

        m = self.metrics(base)
        self.assertGreaterEqual(m["pyprofd_window_write_failures_total"], 2)
        self.assertEqual(m["pyprofd_window_files_dropped_total"], 0)
        os.kill(proc.pid, signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
        self.assertEqual(proc.returncode, 0, err)
        log = self.read_log()
        self.assertNotIn(" lost:", log)
        self.assertNotIn("dropped", log)


if __name__ == "__main__":
    common.main(globals())
