"""Our speedscope file of an async process opened in the real speedscope web app (npm
package `speedscope`, served on 127.0.0.1) in Debian's headless Chromium: one profile
per thread, the busiest opened first, names as written; a screenshot is kept in
tests/output/speedscope.png of the build directory. Skipped by name without Chromium or
the app (tools/install-deps.sh installs both)."""
import functools
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

CONFIG = {}
APP = os.path.join(os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "pyprofd", "speedscope",
                   "node_modules", "speedscope", "dist", "release")
CHROMIUM = shutil.which("chromium")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--window-size=1280,800", "--virtual-time-budget=8000"]


class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


class SpeedscopeApp(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self.tmp.cleanup)
        self.www = os.path.join(self.tmp.name, "www")
        shutil.copytree(APP, self.www)
        handler = functools.partial(Quiet, directory=self.www)
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.addCleanup(self.server.server_close)
        self.addCleanup(self.server.shutdown)

    def chromium(self, url, *args):
        profile_dir = os.path.join(self.tmp.name, "chromium-%d" % len(os.listdir(self.tmp.name)))
        res = subprocess.run([CHROMIUM] + CHROMIUM_FLAGS + ["--user-data-dir=" + profile_dir] + list(args) + [url],
                             capture_output=True, timeout=120)
        self.assertEqual(res.returncode, 0, res.stderr.decode(errors="replace")[-2000:])
        return res.stdout.decode(errors="replace")

    def test_async_process_opens_per_thread(self):
        with common.Target(CONFIG["python"], os.path.join(common.TARGETS, "loops_target.py"), "60") as t:
            ids = json.loads(t.wait_ready())
            path = os.path.join(self.www, "p.json")
            res = common.run_pyprofd(CONFIG["pyprofd"], "record", "--async", "--mode", "wall", "--pid", str(t.pid),
                                     "--duration", "1", "--rate", "20", "--format", "speedscope", "-o", path)
        self.assertEqual(res.returncode, 0, res.stderr)
        port = self.server.server_address[1]
        url = "http://127.0.0.1:%d/index.html#profileURL=http://127.0.0.1:%d/p.json" % (port, port)
        dom = self.chromium(url, "--dump-dom")
        pid = t.pid
        busiest = "pid %d · loop-thread (tid %d)" % (pid, ids["worker"])
        names = {busiest, "pid %d · MainThread (tid %d)" % (pid, ids["main"]),
                 "pid %d · tasks whose loop is not running" % pid}
        # The toolbar: the open profile's name and its place among all of them.
        title = re.search(r"<span>([^<]*) <span[^>]*>\((\d+)/(\d+)\)</span>", dom)
        self.assertIsNotNone(title, dom[-3000:])
        self.assertEqual((title.group(1), title.group(2), title.group(3)), (busiest, "1", str(len(names))))
        # The profile menu lists one entry per thread, nothing else.
        listed = {n.strip() for n in re.findall(r">(pid %d · [^<]*)<" % pid, dom)}
        self.assertEqual(listed, names)
        self.assertNotRegex(dom, r"[\x00-\x08]|<task \?>")
        shot_dir = os.path.join(os.getcwd(), "tests", "output")
        os.makedirs(shot_dir, exist_ok=True)
        shot = os.path.join(shot_dir, "speedscope.png")
        self.chromium(url, "--screenshot=" + shot)
        self.assertGreater(os.path.getsize(shot), 10000)
        print("screenshot:", shot)


if __name__ == "__main__":
    if not CHROMIUM or not os.path.exists(os.path.join(APP, "index.html")):
        print("SKIPPED: needs Debian's chromium and the speedscope app in %s (tools/install-deps.sh)" % APP)
        sys.exit(common.SKIP)
    common.main(globals())
