"""Shared helpers for pyprofd's integration tests: interpreter discovery, targets
that signal readiness over a pipe, running the real binary, and cleanup by PID.

Each test script runs as `python3 test_X.py --pyprofd PATH --interpreter NAME`.
NAME is py3.8 ... py3.13 (pyenv builds), debian3.11 (Debian's static python3) or
sid3.13, sid3.14, sid3.15 (Debian sid's static builds that tools/install-pythons.sh
unpacks under ~/.cache/pyprofd/pythons/X.Y/root).
A missing interpreter exits 77, which ctest reports as skipped, by test name."""
import argparse
import glob
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.path.dirname(os.path.dirname(HERE))
TARGETS = os.path.join(SOURCE_DIR, "tests", "targets")
# gprof2dot, unmodified, from the workplace's shared readers (Debian has no package).
GPROF2DOT = os.environ.get("PYPROFD_GPROF2DOT") or os.path.join(
    os.path.dirname(SOURCE_DIR), "shared", "readers", "gprof2dot", "gprof2dot.py")
SKIP = 77


def pyenv_root():
    root = os.environ.get("PYENV_ROOT")
    if root:
        return root
    try:
        return subprocess.run(["pyenv", "root"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return os.path.expanduser("~/.pyenv")


def sid_root(version):
    """Where tools/install-pythons.sh unpacks Debian sid's Python X.Y."""
    return os.path.join(os.path.expanduser("~"), ".cache", "pyprofd", "pythons", version, "root")


def find_interpreter(name):
    """Path of the interpreter called name, or None if it is not installed."""
    if name.startswith("sid"):
        version = name[len("sid"):]
        path = os.path.join(sid_root(version), "usr", "bin", "python" + version)
        return path if os.access(path, os.X_OK) else None
    if name.startswith("debian"):
        path = "/usr/bin/python" + name[len("debian"):]
        return path if os.path.exists(path) else None
    version = name[len("py"):]
    hits = sorted(glob.glob(os.path.join(pyenv_root(), "versions", version + ".*", "bin", "python" + version)))
    return hits[-1] if hits else None


class Target:
    """A Python process started with (READY_FD, WAIT_FD) arguments. It writes a line to
    READY_FD when in position and runs until WAIT_FD is closed or it is killed."""

    def __init__(self, python, script, *args, env=None, cwd=None):
        ready_r, ready_w = os.pipe()
        wait_r, wait_w = os.pipe()
        self.proc = subprocess.Popen([python, script, str(ready_w), str(wait_r)] + list(args),
                                     pass_fds=(ready_w, wait_r), env=env, cwd=cwd,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        os.close(ready_w)
        os.close(wait_r)
        self.ready_r = ready_r
        self.wait_w = wait_w
        self.pid = self.proc.pid

    def wait_ready(self, timeout=60):
        import select
        r, _, _ = select.select([self.ready_r], [], [], timeout)
        if not r:
            raise AssertionError("target did not become ready in %ss" % timeout)
        line = os.read(self.ready_r, 4096)
        if not line:
            out, err = self.stop()
            raise AssertionError("target exited before ready: %s" % err.decode(errors="replace"))
        return line

    def release(self):
        """Close the wait pipe: a well-behaved target then exits by itself."""
        if self.wait_w >= 0:
            os.close(self.wait_w)
            self.wait_w = -1

    def stop(self):
        self.release()
        if self.proc.poll() is None:
            os.kill(self.pid, signal.SIGKILL)
        out, err = self.proc.communicate(timeout=30)
        if self.ready_r >= 0:
            os.close(self.ready_r)
            self.ready_r = -1
        return out, err

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def free_port():
    """A TCP port free on 127.0.0.1 now (servers in tests listen on loopback only)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def children(pid):
    """pid's child processes ([] once it is gone)."""
    out = []
    try:
        for tid in os.listdir("/proc/%d/task" % pid):
            with open("/proc/%d/task/%s/children" % (pid, tid)) as f:
                out += [int(x) for x in f.read().split()]
    except (FileNotFoundError, ProcessLookupError):
        pass
    return out


def terminate(proc, timeout=30):
    """SIGTERM a process this test started, SIGKILL if it has not exited within timeout."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    elif proc.returncode != 0 and proc.stderr is not None and not proc.stderr.closed:
        # It ended by itself, badly (a crash, a sanitizer report): show why.
        print("process %d exited with %d before the test ended it; its stderr:\n%s"
              % (proc.pid, proc.returncode, proc.stderr.read().decode(errors="replace")[-8000:]), file=sys.stderr)


def wait_for(predicate, timeout, what):
    """predicate()'s first true value, polled every 50 ms; fails after timeout seconds."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("timed out after %ss waiting for %s" % (timeout, what))


def run_pyprofd(pyprofd, *args, timeout=120, **kw):
    return subprocess.run([pyprofd] + list(args), capture_output=True, timeout=timeout, **kw)


# Interpreters a capability is not yet read on: its tests skip (77) by name, with the reason
# ({"sid3.16": "why"}). None at present: --async reads 3.8 to 3.15.
ASYNC_NOT_YET = {
}


def main(test_module_globals, not_yet=None):
    """Parses --pyprofd/--interpreter, skips (77) when the interpreter is missing or listed in
    not_yet ({name: reason}), runs the tests."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--pyprofd", required=True)
    parser.add_argument("--interpreter", required=True)
    args, rest = parser.parse_known_args()
    python = find_interpreter(args.interpreter)
    if python is None:
        print("SKIPPED: interpreter %s is not installed" % args.interpreter)
        sys.exit(SKIP)
    if not_yet and args.interpreter in not_yet:
        print("SKIPPED on %s: %s" % (args.interpreter, not_yet[args.interpreter]))
        sys.exit(SKIP)
    config = test_module_globals["CONFIG"]
    config.update(pyprofd=os.path.abspath(args.pyprofd), python=python, name=args.interpreter)
    print("interpreter %s: %s" % (args.interpreter, python))
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)


def read_pstats(path, python=None):
    """The pstats file as {(file, line, name): {cc, nc, tt, ct, callers{key: (nc, cc, tt, ct)}}},
    read by python's own pstats module (default: this interpreter)."""
    out = subprocess.run([python or sys.executable, os.path.join(HERE, "pstats_check.py"), path],
                         capture_output=True, check=True)
    data = json.loads(out.stdout)
    stats = {}
    for fn, line, name, cc, nc, tt, ct, callers in data["stats"]:
        stats[(fn, line, name)] = {"cc": cc, "nc": nc, "tt": tt, "ct": ct,
                                   "callers": {(c[0], c[1], c[2]): tuple(c[3:]) for c in callers}}
    return data["total_tt"], stats


def by_name(stats, name):
    hits = [v for k, v in stats.items() if k[2] == name]
    if len(hits) != 1:
        raise AssertionError("expected one function %r, found %d in %s" % (name, len(hits), sorted(k[2] for k in stats)))
    return hits[0]


def record_launched(test, script, *args, target_args=(), python=None, timeout=180):
    """`pyprofd record ARGS -o <tmp>/p.stats -- PYTHON SCRIPT -1 -1 TARGET_ARGS`: the target launched
    by pyprofd and profiled from its first frame. Returns (pstats dict, target stdout, pyprofd stderr)."""
    tmp = tempfile.TemporaryDirectory()
    test.addCleanup(tmp.cleanup)
    path = os.path.join(tmp.name, "p.stats")
    res = run_pyprofd(test.config["pyprofd"], "record", *args, "-o", path, "--",
                      python or test.config["python"], script, "-1", "-1", *target_args, timeout=timeout)
    err = res.stderr.decode(errors="replace")
    test.assertEqual(res.returncode, 0, err)
    _, stats = read_pstats(path, python or test.config["python"])
    return stats, res.stdout.decode(errors="replace"), err


def pprof_tags(path, env):
    """{label: set of values} from `go tool pprof -tags`."""
    res = subprocess.run(["go", "tool", "pprof", "-tags", path], capture_output=True, timeout=60, env=env)
    assert res.returncode == 0, res.stderr
    tags, key = {}, None
    for line in res.stdout.decode(errors="replace").splitlines():
        head = re.match(r"^ ?(\w+): Total", line)
        if head:
            key = head.group(1)
            tags[key] = set()
            continue
        entry = re.match(r"^\s+\S+ \(\s*[\d.]+%\): (.*)$", line)
        if entry and key:
            tags[key].add(entry.group(1).strip())
    return tags
