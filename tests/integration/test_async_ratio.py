"""`--async` time shares: wall mode charges suspended coroutines their waiting
time under their task and awaiting coroutines (yappi's wall clock), so
cumtime(slow_io)/cumtime(fast_io) agrees within 7 % with the target's own measure
(3 on a quiet machine); cpu mode gives CPU only to the running task. Runs alone (ctest
RUN_SERIAL): wall and CPU shares need the machine the test asks for."""
import os
import re
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

CONFIG = {}
SCRIPT = os.path.join(common.TARGETS, "async_target.py")


class AsyncRatioTest(unittest.TestCase):
    config = CONFIG

    def launch(self, *args, mode="wall", target_args=()):
        return common.record_launched(self, SCRIPT, "--async", "--mode", mode, *args, target_args=target_args)

    def test_wall_ratio_and_nesting(self):
        stats, out, err = self.launch(target_args=("workers", "3"))
        slow, fast = common.by_name(stats, "slow_io"), common.by_name(stats, "fast_io")
        ratio = slow["ct"] / fast["ct"]
        truth = float(re.search(r"wall time ratio ([\d.]+)", out).group(1))
        print("cumtime slow_io/fast_io = %.3f (the target's own measure: %.3f)" % (ratio, truth))
        # The target's sleeps are 3:1, but overshoot on a loaded machine (its own measure
        # then reads 3.3-3.9): the profile must agree with what the target measured.
        self.assertTrue(2.5 <= ratio <= 4.5, ratio)
        self.assertAlmostEqual(ratio, truth, delta=0.07 * truth)
        # Both sit under worker, which sits under its task.
        for fn in (slow, fast):
            self.assertEqual({k[2] for k in fn["callers"]}, {"worker"})
        # A tick whose task list was read just as the loop switched tasks keeps the plain
        # thread stack (Handle._run -> worker): allowed rarely (see test_async), never as the rule.
        worker = common.by_name(stats, "worker")
        self.assertTrue(worker["callers"])
        under_task = sum(v[0] for k, v in worker["callers"].items() if k[2].startswith("<task Task-"))
        self.assertGreaterEqual(under_task, 0.95 * sum(v[0] for v in worker["callers"].values()), worker["callers"])

    def test_cpu_mode(self):
        stats, out, err = self.launch(mode="cpu", target_args=("workers", "3"))
        total = sum(v["tt"] for v in stats.values())
        for name in ("slow_io", "fast_io"):
            entries = [v for k, v in stats.items() if k[2] == name]
            share = sum(v["ct"] for v in entries) / total
            self.assertLessEqual(share, 0.02, "%s has %.1f%% of CPU time" % (name, 100 * share))
        # cpu_work dominates: the most self time of any function, and most of the CPU (the rest
        # is interpreter start-up and the event loop).
        cpu = common.by_name(stats, "cpu_work")
        self.assertEqual(max(stats, key=lambda k: stats[k]["tt"])[2], "cpu_work")
        self.assertGreater(cpu["ct"], 0.5 * total)
        # The running task's CPU reads task -> worker -> cpu_work.
        self.assertEqual({k[2] for k in cpu["callers"]}, {"worker"})


if __name__ == "__main__":
    common.main(globals(), not_yet=common.ASYNC_NOT_YET)
