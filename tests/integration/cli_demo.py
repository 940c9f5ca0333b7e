"""A shortened `make demo` (examples/demo.sh --quick): gunicorn + 2 UvicornWorkers
serving the FastAPI app under ab load, recorded through the master's pid with
--subprocesses --async. The profile shows the uncached version check
(importlib.metadata / email.feedparser) on top by self time, under the endpoint's
coroutine chain, and caching it raises the requests per second."""
import os
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

CONFIG = {}


def metadata_work(key):
    return "/email/" in key[0] or "/importlib/metadata/" in key[0] or key[0].endswith("zipfile.py") \
        or "/importlib/_bootstrap" in key[0] or key[0].startswith("<frozen")


class DemoTest(unittest.TestCase):
    def test_quick_demo(self):
        res = subprocess.run(["bash", os.path.join(common.SOURCE_DIR, "examples", "demo.sh"), CONFIG["pyprofd"],
                              "--quick"], cwd=common.SOURCE_DIR, capture_output=True, timeout=600)
        out = res.stdout.decode(errors="replace")
        err = res.stderr.decode(errors="replace")
        self.assertEqual(res.returncode, 0, out + err)
        demo = os.path.join(common.SOURCE_DIR, "demo")
        for f in ("profile.stats", "profile.pb.gz", "callgraph.png"):
            self.assertGreater(os.path.getsize(os.path.join(demo, f)), 0, f)
        _, stats = common.read_pstats(os.path.join(demo, "profile.stats"), "/usr/bin/python3")
        by_tt = sorted(stats, key=lambda k: -stats[k]["tt"])
        print("top by tottime:", [(k[0].rsplit("/", 1)[-1], k[2]) for k in by_tt[:5]])
        # On top: the metadata lookup's work (email.feedparser, importlib.metadata, or the
        # zipfile.Path it builds), with email.feedparser among the first three.
        self.assertTrue(metadata_work(by_tt[0]), by_tt[:3])
        self.assertTrue(any("/email/" in k[0] for k in by_tt[:3]), by_tt[:3])
        total = sum(v["tt"] for v in stats.values())
        share = sum(v["tt"] for k, v in stats.items() if metadata_work(k)) / total
        self.assertGreater(share, 0.4, "metadata parsing's share of CPU: %.2f" % share)
        # Under the endpoint's coroutine chain.
        def callers(name):
            return {k[2] for k in common.by_name(stats, name)["callers"]}
        self.assertEqual(callers("version"), {"_lookup_version"})
        self.assertEqual(callers("record_span"), {"instrumented_completion"})
        self.assertEqual(callers("instrumented_completion"), {"answer"})
        self.assertEqual(callers("answer"), {"chat"})
        with open(os.path.join(demo, "rps.txt")) as f:
            before, after = (float(x) for x in f.read().split())
        print("requests per second: before %.1f, after %.1f" % (before, after))
        self.assertGreater(after, before)
        self.assertIn("callgraph.png", out)
        self.assertIn("go tool pprof", out)


if __name__ == "__main__":
    common.main(globals())
