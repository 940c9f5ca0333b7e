"""Targets in their own pid namespace (a container seen from the host): a Python started
by `unshare --pid --fork --mount-proc` stores its namespace's thread ids. `record`,
`dump` and `daemon` on its host pid must give the host's thread ids (as NSpid in
/proc/PID/task/*/status maps them), its thread names and its hot function; the daemon
labels the samples with the target's cgroup (the test puts it in a cgroup v2 group of
its own when the host lets it) and /debug/pprof/recent answers at once, before any
window has completed. NamespaceOnlyInterpreter: an interpreter that exists only on a tmpfs
inside the target's mount namespace, and its child followed with --subprocesses. Needs
root and unshare: skipped by name otherwise."""
import glob
import json
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
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

CONFIG = {}
SCRIPT = os.path.join(common.TARGETS, "ns_target.py")
UNIFIED = "/sys/fs/cgroup/unified" if os.path.isdir("/sys/fs/cgroup/unified") else "/sys/fs/cgroup"


def read(path):
    with open(path, errors="replace") as f:
        return f.read()


def nspid(status_path):
    m = re.search(r"^NSpid:\s+(.*)$", read(status_path), re.M)
    return [int(x) for x in m.group(1).split()] if m else []


def host_tids(pid):
    """{tid in the target's namespace: tid on the host}, from the kernel."""
    out = {}
    for tid in os.listdir("/proc/%d/task" % pid):
        ids = nspid("/proc/%d/task/%s/status" % (pid, tid))
        out[ids[-1]] = ids[0]
    return out


class UnshareCase(unittest.TestCase):
    """Skipped without root and unshare; each test gets a temporary folder, also pprof's."""

    @classmethod
    def setUpClass(cls):
        if os.geteuid() != 0 or not shutil.which("unshare"):
            raise unittest.SkipTest("needs root and unshare")

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self.tmp.cleanup)
        self.env = dict(os.environ, PPROF_TMPDIR=self.tmp.name)


class NamespaceTest(UnshareCase):
    def setUp(self):
        super().setUp()
        self.tag = "ns-test-" + uuid.uuid4().hex
        outer = subprocess.Popen(["unshare", "--pid", "--fork", "--mount-proc", "--kill-child", CONFIG["python"],
                                  SCRIPT, self.tag], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.addCleanup(self.end, outer)
        line = outer.stdout.readline().decode()
        if not line.startswith("ready"):
            self.skipTest("unshare --pid --fork --mount-proc did not start the target: %s" % outer.stderr.read())
        fields = line.split()
        self.ns_pid, self.ns_workers = int(fields[1]), [int(x) for x in fields[2:4]]
        children = read("/proc/%d/task/%d/children" % (outer.pid, outer.pid)).split()
        self.assertEqual(len(children), 1, children)
        self.pid = int(children[0])
        self.addCleanup(self.kill_target)
        ids = nspid("/proc/%d/status" % self.pid)
        self.assertEqual(ids, [self.pid, self.ns_pid])
        self.assertNotEqual(self.pid, self.ns_pid)
        self.tids = host_tids(self.pid)
        self.workers = {str(self.tids[t]) for t in self.ns_workers}
        self.assertTrue(self.workers.isdisjoint({str(t) for t in self.ns_workers}), "host and namespace ids must differ")

    def kill_target(self):
        try:
            os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def end(self, p):
        if p.poll() is None:
            os.kill(p.pid, signal.SIGKILL)
        p.communicate(timeout=30)

    def top(self, path):
        res = subprocess.run(["go", "tool", "pprof", "-top", path], capture_output=True, timeout=60, env=self.env)
        self.assertEqual(res.returncode, 0, res.stderr)
        return res.stdout.decode(errors="replace")

    def check_profile(self, path):
        self.assertIn("ns_hot", self.top(path))
        tags = common.pprof_tags(path, self.env)
        # Only the host's ids of this process's threads, both workers among them.
        self.assertTrue(tags["thread_id"] <= {str(h) for h in self.tids.values()}, (tags["thread_id"], self.tids))
        self.assertTrue(self.workers <= tags["thread_id"], (tags["thread_id"], self.workers))
        self.assertTrue({"ns-worker-0", "ns-worker-1"} <= tags["thread_name"], tags["thread_name"])
        return tags

    def test_record_and_dump(self):
        out = os.path.join(self.tmp.name, "ns.pb.gz")
        res = common.run_pyprofd(CONFIG["pyprofd"], "record", "--pid", str(self.pid), "--duration", "2", "-o", out)
        self.assertEqual(res.returncode, 0, res.stderr)
        self.check_profile(out)

        res = common.run_pyprofd(CONFIG["pyprofd"], "dump", "--pid", str(self.pid), "--json")
        self.assertEqual(res.returncode, 0, res.stderr)
        threads = json.loads(res.stdout)["threads"]
        ids = {t["native_thread_id"]: t["name"] for t in threads}
        self.assertEqual(ids, {self.pid: "MainThread", self.tids[self.ns_workers[0]]: "ns-worker-0",
                               self.tids[self.ns_workers[1]]: "ns-worker-1"})

    def join_cgroup(self):
        """Moves the target into a cgroup of its own; returns its path, or None if the host does not allow it."""
        group = os.path.join(UNIFIED, self.tag)
        try:
            os.mkdir(group)
        except OSError:
            return None
        self.addCleanup(self.remove_cgroup, group)
        with open(os.path.join(group, "cgroup.procs"), "w") as f:
            f.write(str(self.pid))
        return "/" + self.tag

    def remove_cgroup(self, group):
        self.kill_target()
        for _ in range(100):  # the killed target leaves the group a moment later
            try:
                os.rmdir(group)
                return
            except OSError:
                time.sleep(0.05)

    def test_daemon(self):
        cgroup = self.join_cgroup()
        log = os.path.join(self.tmp.name, "daemon.log")
        daemon = subprocess.Popen([CONFIG["pyprofd"], "daemon", "--pid", str(self.pid), "--window", "60",
                                   "--listen", "127.0.0.1:0", "--log-file", log],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.addCleanup(self.end, daemon)
        end = time.monotonic() + 10
        while time.monotonic() < end and not ("attached process %d " % self.pid in (read(log) if os.path.exists(log) else "")):
            time.sleep(0.05)
        text = read(log)
        self.assertIn("attached process %d " % self.pid, text)
        port = re.search(r"listening on http://127\.0\.0\.1:(\d+)", text).group(1)
        time.sleep(1.5)
        # No 60-second window has completed: /recent answers at once with the current one.
        t0 = time.monotonic()
        with urllib.request.urlopen("http://127.0.0.1:%s/debug/pprof/recent" % port, timeout=10) as r:
            self.assertEqual(r.status, 200)
            body = r.read()
        self.assertLess(time.monotonic() - t0, 1.0)
        path = os.path.join(self.tmp.name, "recent.pb.gz")
        with open(path, "wb") as f:
            f.write(body)
        tags = self.check_profile(path)
        expected = cgroup or re.search(r"^0::(.*)$", read("/proc/%d/cgroup" % self.pid), re.M).group(1)
        self.assertEqual(tags["cgroup"], {expected})
        self.assertEqual(read(log).count("attached process %d " % self.pid), 1)
        daemon.send_signal(signal.SIGTERM)
        _, err = daemon.communicate(timeout=30)
        self.assertEqual(daemon.returncode, 0, err)


class NamespaceOnlyInterpreter(UnshareCase):
    """The interpreter exists only inside the target's mount namespace: its executable (and
    libpython, for shared builds) copied onto a tmpfs mounted over an empty folder there, so the
    host sees that folder empty. record --subprocesses from the host must read the images
    through /proc/PID/root and follow the target's child (same interpreter, same namespace)."""

    def setUp(self):
        super().setUp()
        self.only = os.path.join(self.tmp.name, "ns-only")
        os.mkdir(self.only)
        python = os.path.realpath(CONFIG["python"])
        home = os.path.dirname(os.path.dirname(python))
        libs = glob.glob(os.path.join(home, "lib", "libpython3*.so*"))
        script = ('mount -t tmpfs tmpfs "$ONLY" && cp "$PY" $LIBS "$ONLY"/ && '
                  'exec env LD_LIBRARY_PATH="$ONLY:$HOME_/lib/x86_64-linux-gnu" PYTHONHOME="$HOME_" "$ONLY/$(basename "$PY")" "$@"')
        env = dict(os.environ, ONLY=self.only, PY=python, LIBS=" ".join(libs), HOME_=home)
        tag = "ns-only-" + uuid.uuid4().hex
        outer = subprocess.Popen(["unshare", "--pid", "--fork", "--mount-proc", "sh", "-c", script, "sh", SCRIPT, tag,
                                  "child"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.addCleanup(NamespaceTest.end, self, outer)
        line = outer.stdout.readline().decode()
        if not line.startswith("ready"):
            self.skipTest("the target did not start from a namespace-only tmpfs: %s" % outer.stderr.read())
        children = read("/proc/%d/task/%d/children" % (outer.pid, outer.pid)).split()
        self.pid = int(children[0])
        self.addCleanup(NamespaceTest.kill_target, self)
        self.ns_child = int(line.split()[5])
        self.child = common.wait_for(lambda: [int(c) for c in read("/proc/%d/task/%d/children" % (self.pid, self.pid))
                                              .split()], 30, "the target's child")[0]
        self.assertEqual(nspid("/proc/%d/status" % self.child), [self.child, self.ns_child])
        # Its two named threads running (on a loaded machine its start-up took longer than
        # the recording: only its main thread, still importing, was sampled).
        common.wait_for(lambda: len(host_tids(self.child)) >= 3, 30, "the child's threads")

    def test_record_subprocesses(self):
        self.assertEqual(os.listdir(self.only), [], "the host must not see the namespace's tmpfs")
        image = [l.split()[-1] for l in read("/proc/%d/maps" % self.pid).splitlines()
                 if l.split()[-1].startswith(self.only + "/")]
        self.assertTrue(image, "the interpreter is not mapped from the tmpfs")
        self.assertFalse(any(os.path.exists(p) for p in image), image)
        out = os.path.join(self.tmp.name, "tree.pb.gz")
        res = common.run_pyprofd(CONFIG["pyprofd"], "record", "--pid", str(self.pid), "--subprocesses",
                                 "--duration", "3", "-o", out)
        err = res.stderr.decode(errors="replace")
        self.assertEqual(res.returncode, 0, err)
        tags = common.pprof_tags(out, self.env)
        self.assertEqual(tags["pid"], {str(self.pid), str(self.child)}, err)
        self.assertTrue({"ns-worker-0", "ns-child-0", "ns-child-1"} <= tags["thread_name"], tags["thread_name"])
        child_tids = set(str(t) for t in host_tids(self.child).values())
        named = subprocess.run(["go", "tool", "pprof", "-tags", "-tagfocus", "thread_name=ns-child-0", out],
                               capture_output=True, timeout=60, env=self.env).stdout.decode()
        self.assertTrue(any(t in named for t in child_tids), named)


if __name__ == "__main__":
    common.main(globals())
