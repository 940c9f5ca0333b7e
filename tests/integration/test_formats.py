"""One recording written in every format at once: each file is read by its real
reader (pstats, go tool pprof, callgrind_annotate, dot, rsvg-convert, JSON/XML
parsers) and the totals agree across formats."""
import json
import os
import re
import subprocess
import sys
import tempfile
import unittest
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

CONFIG = {}
SCRIPT = os.path.join(common.TARGETS, "record_target.py")
FILES = ["p.stats", "p.pb.gz", "p.folded", "p.speedscope.json", "callgrind.out.p", "p.dot", "p.png", "p.svg"]


def read(path, mode="r"):
    with open(path, mode, **({} if "b" in mode else {"encoding": "utf-8"})) as f:
        return f.read()


def run(cmd, env=None):
    res = subprocess.run(cmd, capture_output=True, timeout=120, env=env)
    if res.returncode != 0:
        raise AssertionError("%s failed: %s" % (cmd, res.stderr.decode(errors="replace")))
    return res.stdout.decode(errors="replace"), res.stderr.decode(errors="replace")


class FormatsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.dir = cls.tmp.name
        args = []
        for f in FILES:
            args += ["-o", os.path.join(cls.dir, f)]
        with common.Target(CONFIG["python"], SCRIPT, "ratio", "10") as t:
            t.wait_ready()
            cls.pid = t.pid
            res = common.run_pyprofd(CONFIG["pyprofd"], "record", "--pid", str(t.pid), "--rate", "200",
                                     "--duration", "2", *args)
        cls.err = res.stderr.decode(errors="replace")
        assert res.returncode == 0, cls.err
        cls.samples = int(re.search(r"recorded [\d.]+ s: (\d+) samples", cls.err).group(1))
        cls.total_tt, cls.stats = common.read_pstats(os.path.join(cls.dir, "p.stats"), CONFIG["python"])
        cls.env = dict(os.environ, HOME=cls.dir, GOCACHE=os.path.join(cls.dir, "go"), PPROF_TMPDIR=cls.dir)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def path(self, name):
        return os.path.join(self.dir, name)

    def test_every_file_written(self):
        for f in FILES:
            self.assertIn("wrote " + self.path(f), self.err)
            self.assertGreater(os.path.getsize(self.path(f)), 0, f)

    def test_pprof_matches_pstats(self):
        out, _ = run(["go", "tool", "pprof", "-top", "-nodecount=200", "-unit=ns", self.path("p.pb.gz")], self.env)
        rows = [l.split() for l in out.splitlines() if re.match(r"\s*[\d.]+ns\s", l)]
        flat = {r[5]: float(r[0][:-2]) for r in rows}
        # pprof's top function and its flat % equal pstats' top function by tottime.
        top_key = max(self.stats, key=lambda k: self.stats[k]["tt"])
        self.assertEqual(rows[0][5], top_key[2], out)
        pprof_pct = float(rows[0][1].rstrip("%"))
        pstats_pct = 100.0 * self.stats[top_key]["tt"] / self.total_tt
        self.assertAlmostEqual(pprof_pct, pstats_pct, delta=0.01 + 1e-9)
        # Totals agree: pprof's sum of flat equals pstats' total time.
        total_match = re.search(r"of ([\d.]+)ns total", out) or re.search(r"Total samples = ([\d.]+)ns", out)
        self.assertIsNotNone(total_match, out)
        self.assertAlmostEqual(float(total_match.group(1)) / 1e9, self.total_tt, delta=1e-6 * max(1, self.total_tt))
        # Samples: the count sample type sums to the recorded sample count.
        out, _ = run(["go", "tool", "pprof", "-top", "-sample_index=samples", self.path("p.pb.gz")], self.env)
        self.assertRegex(out, r"Total samples = %d\b" % self.samples)
        # Labels: pid and thread are there and split the profile.
        out, _ = run(["go", "tool", "pprof", "-tags", self.path("p.pb.gz")], self.env)
        self.assertIn("pid", out)
        self.assertIn("thread_id", out)
        out, _ = run(["go", "tool", "pprof", "-top", "-tagfocus=pid=%d" % self.pid, self.path("p.pb.gz")], self.env)
        self.assertIn("heavy", out)
        out, _ = run(["go", "tool", "pprof", "-top", "-tagfocus=pid=%d" % (self.pid + 1), self.path("p.pb.gz")], self.env)
        self.assertNotIn("heavy", out)

    def test_folded_totals(self):
        lines = read(self.path("p.folded")).splitlines()
        counts = [int(l.rsplit(" ", 1)[1]) for l in lines]
        self.assertEqual(sum(counts), self.samples)
        self.assertEqual(len(set(l.rsplit(" ", 1)[0] for l in lines)), len(lines), "one line per distinct stack")
        self.assertTrue(any(";heavy (" in l for l in lines))

    def test_speedscope(self):
        doc = json.loads(read(self.path("p.speedscope.json")))
        frames = doc["shared"]["frames"]
        total = 0
        for prof in doc["profiles"]:
            for stack in prof["samples"]:
                for i in stack:
                    self.assertTrue(0 <= i < len(frames))
            total += sum(prof["weights"])
        self.assertAlmostEqual(total / 1e9, self.total_tt, delta=1e-6)

    def test_callgrind(self):
        out, _ = run(["callgrind_annotate", self.path("callgrind.out.p")])
        totals = re.search(r"([\d,]+)\s+([\d,]+)\s+\(100\.0%\)\s+PROGRAM TOTALS", out) or \
            re.search(r"([\d,]+)\s+\(100\.0%\)\s+([\d,]+)\s+\(100\.0%\)\s+PROGRAM TOTALS", out)
        self.assertIsNotNone(totals, out)
        self.assertEqual(int(totals.group(1).replace(",", "")), self.samples)

    def test_dot_and_pictures(self):
        _, err = run(["dot", "-Tsvg", "-o", self.path("check.svg"), self.path("p.dot")])
        self.assertEqual(err.strip(), "")
        self.assertEqual(read(self.path("p.png"), "rb")[:8], b"\x89PNG\r\n\x1a\n")
        ET.parse(self.path("p.svg"))
        run(["rsvg-convert", "-f", "png", "-o", self.path("flame.png"), self.path("p.svg")])

    def test_gprof2dot(self):
        # The reader users feed pstats files to; its DOT must render, and the top
        # function by self time must appear in it.
        self.assertTrue(os.path.exists(common.GPROF2DOT), "gprof2dot reader missing: " + common.GPROF2DOT)
        out, _ = run(["/usr/bin/python3", common.GPROF2DOT, "-f", "pstats", "-n", "0", "-e", "0",
                      "-o", self.path("g.dot"), self.path("p.stats")])
        dot = read(self.path("g.dot"))
        self.assertIn("digraph", dot)
        top_key = max(self.stats, key=lambda k: self.stats[k]["tt"])
        self.assertIn(top_key[2], dot)
        _, err = run(["dot", "-Tpng", "-o", self.path("g.png"), self.path("g.dot")])
        self.assertEqual(read(self.path("g.png"), "rb")[:8], b"\x89PNG\r\n\x1a\n")


if __name__ == "__main__":
    common.main(globals())
