"""Bad input gets one clear line on stderr and the documented exit code:
1 for attach failures (no such process, not Python, no permission, unsupported
Python), 2 for bad flags. Never a crash, never a hang."""
import os
import pwd
import shutil
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

CONFIG = {}


def dump(*args, **kw):
    return common.run_pyprofd(CONFIG["pyprofd"], "dump", *args, timeout=60, **kw)


def one_line(res):
    err = res.stderr.decode(errors="replace")
    lines = err.strip().splitlines()
    return err, lines


class CliErrors(unittest.TestCase):
    def assertOneLine(self, res, code, *needles):
        err, lines = one_line(res)
        self.assertEqual(res.returncode, code, err)
        self.assertEqual(len(lines), 1, err)
        self.assertTrue(lines[0].startswith("pyprofd: "), err)
        for n in needles:
            self.assertIn(n, lines[0])
        self.assertEqual(res.stdout, b"")

    def test_no_such_pid(self):
        p = subprocess.Popen(["true"])
        p.wait()  # reaped: its pid is free now
        self.assertOneLine(dump("--pid", str(p.pid)), 1, "no such process", str(p.pid))

    def test_not_python(self):
        p = subprocess.Popen(["sleep", "100"])
        try:
            self.assertOneLine(dump("--pid", str(p.pid)), 1, "not a Python process", "sleep")
        finally:
            p.kill()
            p.wait()

    def test_bad_flags(self):
        self.assertOneLine(dump("--bogus"), 2, "bogus")
        self.assertOneLine(dump(), 2, "pid")
        self.assertOneLine(dump("--pid", "abc"), 2, "pid")
        self.assertOneLine(dump("--pid", "-5"), 2)
        res = common.run_pyprofd(CONFIG["pyprofd"], "frobnicate")
        self.assertOneLine(res, 2, "frobnicate")
        res = common.run_pyprofd(CONFIG["pyprofd"])
        self.assertEqual(res.returncode, 2)

    def test_help(self):
        for cmd in (["--help"], ["dump", "--help"], ["record", "--help"]):
            res = common.run_pyprofd(CONFIG["pyprofd"], *cmd)
            self.assertEqual(res.returncode, 0, cmd)
            self.assertIn(b"usage", res.stdout.lower())

    def test_permission_denied(self):
        if os.geteuid() != 0:
            self.skipTest("needs root to start a root-owned target and drop to nobody")
        setpriv = shutil.which("setpriv")
        self.assertIsNotNone(setpriv, "setpriv (util-linux) is required")
        nobody = pwd.getpwnam("nobody")
        with common.Target(CONFIG["python"], os.path.join(common.TARGETS, "dump_target.py")) as t:
            t.wait_ready()
            res = subprocess.run([setpriv, "--reuid=%d" % nobody.pw_uid, "--regid=%d" % nobody.pw_gid,
                                  "--clear-groups", "--inh-caps=-all", CONFIG["pyprofd"], "dump", "--pid", str(t.pid)],
                                 capture_output=True, timeout=60)
        self.assertOneLine(res, 1, "permission denied", "CAP_SYS_PTRACE", "kernel.yama.ptrace_scope")

    def test_unsupported_versions(self):
        for version in ("2.7", "3.6", "3.7"):
            with self.subTest(version=version):
                python = common.find_interpreter("py" + version)
                if python is None:
                    self.skipTest("interpreter py%s is not installed" % version)
                with common.Target(python, os.path.join(common.TARGETS, "idle_target.py")) as t:
                    t.wait_ready()
                    res = dump("--pid", str(t.pid))
                self.assertOneLine(res, 1, "Python " + version, "does not support")


if __name__ == "__main__":
    common.main(globals())
