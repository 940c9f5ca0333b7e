"""`cmake --install` into a staging prefix installs the binary, the systemd unit and the
example configuration; `systemd-analyze verify` (Debian systemd) accepts the unit (its
ExecStart pointed at the staged binary, as the unit names the final prefix's), and the
staged binary accepts the example configuration (`--config`, checked by a daemon that
starts and stops at once)."""
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

CONFIG = {}


class InstallTest(unittest.TestCase):
    def test_install_and_verify(self):
        for tool in ("cmake", "systemd-analyze"):
            if not shutil.which(tool):
                self.skipTest("%s is not installed" % tool)
        build = os.path.dirname(CONFIG["pyprofd"])
        with tempfile.TemporaryDirectory() as stage:
            res = subprocess.run(["cmake", "--install", build, "--prefix", stage], capture_output=True, timeout=120)
            self.assertEqual(res.returncode, 0, res.stderr)
            binary = os.path.join(stage, "bin", "pyprofd")
            unit = os.path.join(stage, "lib", "systemd", "system", "pyprofd.service")
            conf = os.path.join(stage, "etc", "pyprofd", "pyprofd.conf")
            for path in (binary, unit, conf):
                self.assertTrue(os.path.exists(path), path)
            with open(unit) as f:
                text = f.read()
            for hardening in ("NoNewPrivileges=yes", "ProtectSystem=strict", "StateDirectory=pyprofd",
                              "CapabilityBoundingSet=CAP_SYS_PTRACE"):
                self.assertIn(hardening, text)
            staged = os.path.join(stage, "pyprofd.service")
            with open(staged, "w") as f:
                f.write(re.sub(r"^ExecStart=\S+", "ExecStart=" + binary, text, flags=re.M))
            res = subprocess.run(["systemd-analyze", "verify", staged], capture_output=True, timeout=60)
            self.assertEqual(res.returncode, 0, res.stdout + res.stderr)
            # The example configuration works (flags win: writable paths and a free port swapped in):
            # the daemon starts with its values, and SIGTERM stops it.
            log = os.path.join(stage, "daemon.log")
            daemon = subprocess.Popen([binary, "daemon", "--config", conf, "--dir", stage, "--spool-dir",
                                       os.path.join(stage, "spool"), "--listen", "127.0.0.1:0", "--log-file", log],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            try:
                for _ in range(200):
                    if os.path.exists(log) and "sampling at" in open(log).read():
                        break
                    time.sleep(0.05)
                self.assertIn("sampling at 100 Hz in 60-second windows", open(log).read())
            finally:
                daemon.send_signal(signal.SIGTERM)
                _, err = daemon.communicate(timeout=30)
            self.assertEqual(daemon.returncode, 0, err)
            bad = os.path.join(stage, "bad.conf")
            with open(bad, "w") as f:
                f.write("no-such-option = 1\n")
            res = subprocess.run([binary, "daemon", "--config", bad, "--all"], capture_output=True, timeout=30)
            self.assertNotEqual(res.returncode, 0)
            self.assertIn("no-such-option", res.stderr.decode())


if __name__ == "__main__":
    common.main(globals())
