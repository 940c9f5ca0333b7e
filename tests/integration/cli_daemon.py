"""`pyprofd daemon` refuses bad input before starting: one line on stderr starting
with "pyprofd: ", nothing on stdout, a non-zero exit, no server left behind."""
import os
import signal
import socket
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

CONFIG = {}


def daemon(*args):
    return common.run_pyprofd(CONFIG["pyprofd"], "daemon", *args, timeout=30)


class DaemonCli(unittest.TestCase):
    def assertRefused(self, res, *needles):
        err = res.stderr.decode(errors="replace")
        lines = err.strip().splitlines()
        self.assertNotEqual(res.returncode, 0, err)
        self.assertEqual(len(lines), 1, err)
        self.assertTrue(lines[0].startswith("pyprofd: "), err)
        for n in needles:
            self.assertIn(n, lines[0])
        self.assertEqual(res.stdout, b"")

    def test_unknown_flag(self):
        self.assertRefused(daemon("--all", "--bogus"), "bogus")

    def test_no_or_several_target_kinds(self):
        self.assertRefused(daemon(), "--match")
        self.assertRefused(daemon("--all", "--match", "x"), "exactly one")

    def test_bad_regex(self):
        self.assertRefused(daemon("--match", "(unclosed"), "regex")

    def test_bad_values(self):
        self.assertRefused(daemon("--all", "--window", "0"), "--window")
        self.assertRefused(daemon("--all", "--keep", "0"), "--keep")
        self.assertRefused(daemon("--all", "--formats", "pprof,zip"), "zip")
        self.assertRefused(daemon("--all", "--label", "novalue"), "KEY=VALUE")
        self.assertRefused(daemon("--all", "--log-level", "loud"), "--log-level")

    def test_bad_native_flags(self):
        self.assertRefused(daemon("--all", "--native-all"), "need --native")
        self.assertRefused(daemon("--all", "--native", "--native-pause", "sometimes"), "--native-pause", "sometimes")
        # From --config too: its switches take "= true".
        with tempfile.NamedTemporaryFile("w", suffix=".conf") as f:
            f.write("all = true\nnative-all = true\n")
            f.flush()
            self.assertRefused(daemon("--config", f.name), "need --native")

    def test_busy_port(self):
        s = socket.socket()
        self.addCleanup(s.close)
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        self.assertRefused(daemon("--all", "--listen", "127.0.0.1:%d" % port), str(port))

    def test_non_loopback_needs_listen_any(self):
        self.assertRefused(daemon("--all", "--listen", "0.0.0.0:0"), "--listen-any")
        self.assertRefused(daemon("--all", "--listen", "no-port"), "HOST:PORT")

    def test_unwritable_dir(self):
        self.assertRefused(daemon("--all", "--dir", "/nonexistent-pyprofd-dir"), "/nonexistent-pyprofd-dir")
        with tempfile.NamedTemporaryFile() as f:
            self.assertRefused(daemon("--all", "--dir", f.name))


class DaemonDir(unittest.TestCase):
    def test_leftover_temp_files(self):
        """Temp files a dead daemon left in --dir are removed; one whose writer lives, or
        whose name holds no pid (more digits than a pid has), is left alone, and such a
        name does not stop the daemon (std::stol threw on it)."""
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        gone = subprocess.Popen(["true"])
        gone.wait()
        names = {n % pid: n % pid for n, pid in ((".pyprofd-20260101T000000Z.pb.gz.tmp.%d.0", gone.pid),
                                                 (".pyprofd-20260101T000000Z.pb.gz.tmp.%d.0", os.getpid()),
                                                 (".pyprofd-20260101T000000Z.pb.gz.tmp.%s.0", "9" * 30))}
        for n in names:
            open(os.path.join(tmp.name, n), "w").close()
        d = subprocess.Popen([CONFIG["pyprofd"], "daemon", "--match", "no-such-process-for-cli-daemon",
                              "--window", "1", "--dir", tmp.name, "--log-file", os.path.join(tmp.name, "log")],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.addCleanup(common.terminate, d)
        log = os.path.join(tmp.name, "log")

        def windows_or_exit():
            ended = d.poll() is not None
            return ended or (os.path.exists(log) and open(log).read().count("has no samples") >= 2)
        common.wait_for(windows_or_exit, 20, "two windows")
        self.assertIsNone(d.poll(), d.stderr.read() if d.poll() is not None else "")
        d.send_signal(signal.SIGTERM)
        _, err = d.communicate(timeout=30)
        self.assertEqual(d.returncode, 0, err)
        left = sorted(n for n in os.listdir(tmp.name) if n.startswith("."))
        self.assertEqual(left, sorted([".pyprofd-20260101T000000Z.pb.gz.tmp.%d.0" % os.getpid(),
                                       ".pyprofd-20260101T000000Z.pb.gz.tmp.%s.0" % ("9" * 30)]))


if __name__ == "__main__":
    common.main(globals())
