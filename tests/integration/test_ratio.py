"""A known CPU ratio: heavy() burns 3 ms of CPU for every 1 ms light() burns; at
1 kHz for 3 s the pstats tottime ratio is 3 +- 0.45 (3,000 samples: the sampling
error of the ratio is about 0.13), and the file loads with
pyenv 3.8's and 3.13's pstats whatever the target's version. Runs alone (ctest
RUN_SERIAL): a CPU ratio needs the CPU the test asks for."""
import os
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

CONFIG = {}
SCRIPT = os.path.join(common.TARGETS, "record_target.py")


class RatioTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self.tmp.cleanup)

    def record(self, pid, *args):
        path = os.path.join(self.tmp.name, "profile.stats")
        res = common.run_pyprofd(CONFIG["pyprofd"], "record", "--pid", str(pid), "-o", path, *args)
        err = res.stderr.decode(errors="replace")
        self.assertEqual(res.returncode, 0, err)
        return path, err

    def stats(self, path, python=None):
        return common.read_pstats(path, python or CONFIG["python"])

    def test_known_ratio(self):
        with common.Target(CONFIG["python"], SCRIPT, "ratio", "10") as t:
            t.wait_ready()
            path, err = self.record(t.pid, "--rate", "1000", "--duration", "3")
        total, stats = self.stats(path)
        heavy, light = common.by_name(stats, "heavy"), common.by_name(stats, "light")
        ratio = heavy["tt"] / light["tt"]
        print("heavy/light tottime ratio %.3f" % ratio)
        self.assertTrue(2.55 <= ratio <= 3.45, "heavy/light tottime ratio %.3f" % ratio)
        # CPU mode: one busy thread cannot use more CPU than the 3 s window (the machine
        # may give it less when other tests run beside it).
        self.assertTrue(0.5 <= total <= 3.3, total)
        # Every supported reader loads it, whatever the target's version.
        for reader in ("py3.8", "py3.13"):
            python = common.find_interpreter(reader)
            if python is None:
                print("reader %s: SKIPPED (not installed)" % reader)
                continue
            other_total, other = self.stats(path, python)
            self.assertEqual(other, stats, reader)
            self.assertAlmostEqual(other_total, total, places=6)


if __name__ == "__main__":
    common.main(globals())
