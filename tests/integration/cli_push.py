"""`pyprofd daemon --push URL` against a small local receiver (http.server on
127.0.0.1) standing in for Pyroscope's ingest API: one POST per window with the
query fields Pyroscope reads (name=APP.cpu{labels}, from, until, format=pprof,
sampleRate, spyName=pyprofd) and the pprof in the multipart field "profile", each
body readable by `go tool pprof` and showing the target's hot function. With the
receiver down for 3+ windows and then up, every window arrives, in order, none
lost; with a spool too small for them, the oldest are dropped and counted in
/metrics; SIGTERM pushes the last window."""
import email.parser
import email.policy
import http.server
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.parse
import urllib.request
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
from common import wait_for  # noqa: E402

CONFIG = {}
SCRIPT = os.path.join(common.TARGETS, "daemon_target.py")


class Receiver(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            b"Content-Type: " + self.headers["Content-Type"].encode() + b"\r\n\r\n" + body)
        parts = {p.get_param("name", header="content-disposition"): p.get_payload(decode=True)
                 for p in msg.iter_parts()}
        url = urllib.parse.urlsplit(self.path)
        self.server.received.append((url.path, urllib.parse.parse_qs(url.query), parts))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


class PushTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self.tmp.cleanup)
        self.tag = "push-test-" + uuid.uuid4().hex
        target = subprocess.Popen([CONFIG["python"], SCRIPT, self.tag], stdout=subprocess.PIPE,
                                  stderr=subprocess.DEVNULL)
        self.addCleanup(self.end, target)
        self.assertTrue(target.stdout.readline().startswith(b"ready"))
        self.port = common.free_port()
        self.received = []

    def end(self, p):
        if p.poll() is None:
            os.kill(p.pid, signal.SIGKILL)
        p.communicate(timeout=30)

    def receiver_up(self):
        server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Receiver)
        server.received = self.received
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self.addCleanup(server.server_close)
        self.addCleanup(server.shutdown)

    def start_daemon(self, *extra):
        self.log = os.path.join(self.tmp.name, "daemon.log")
        daemon = subprocess.Popen([CONFIG["pyprofd"], "daemon", "--match", self.tag, "--window", "1",
                                   "--push", "http://127.0.0.1:%d" % self.port,
                                   "--spool-dir", os.path.join(self.tmp.name, "spool"), "--app-name", "svc",
                                   "--label", "env=test", "--listen", "127.0.0.1:0", "--log-file", self.log] +
                                  list(extra), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.addCleanup(self.end, daemon)
        text = lambda: open(self.log).read() if os.path.exists(self.log) else ""  # noqa: E731
        port = wait_for(lambda: re.search(r"listening on http://127\.0\.0\.1:(\d+)", text()), 10, "listening")
        self.base = "http://127.0.0.1:" + port.group(1)
        return daemon

    def metrics(self):
        with urllib.request.urlopen(self.base + "/metrics", timeout=10) as r:
            text = r.read().decode()
        return {m.group(1): float(m.group(2)) for m in re.finditer(r"^(pyprofd_\w+) (\S+)$", text, re.M)}

    def check_windows(self, windows):
        """Every POST as Pyroscope's ingest API defines it, in order, contiguous."""
        previous_until = None
        for path, q, parts in windows:
            self.assertEqual(path, "/ingest")
            self.assertEqual(q["name"], ["svc.cpu{env=test}"])
            self.assertEqual((q["format"], q["sampleRate"], q["spyName"]), (["pprof"], ["100"], ["pyprofd"]))
            start, until = int(q["from"][0]), int(q["until"][0])
            self.assertLess(start, until)
            if previous_until is not None:
                self.assertEqual(start, previous_until, "windows out of order or missing")
            previous_until = until
            self.assertIn("profile", parts)

    def go_top(self, body):
        path = os.path.join(self.tmp.name, "pushed.pb.gz")
        with open(path, "wb") as f:
            f.write(body)
        res = subprocess.run(["go", "tool", "pprof", "-top", path], capture_output=True, timeout=60)
        self.assertEqual(res.returncode, 0, res.stderr)
        return res.stdout.decode(errors="replace")

    def test_push_after_outage(self):
        daemon = self.start_daemon()
        # The receiver is down for the first windows: they wait in the spool.
        wait_for(lambda: self.metrics()["pyprofd_pushes_failed_total"] >= 2, 15, "failed pushes")
        wait_for(lambda: self.metrics()["pyprofd_windows_written_total"] >= 0 and
                 self.metrics()["pyprofd_spool_bytes"] > 0, 10, "a spooled window")
        time.sleep(3)  # 3 more windows while down
        self.receiver_up()
        wait_for(lambda: len(self.received) >= 4, 60, "the spooled windows")
        daemon.send_signal(signal.SIGTERM)
        _, err = daemon.communicate(timeout=30)
        self.assertEqual(daemon.returncode, 0, err)
        self.check_windows(self.received)
        self.assertGreaterEqual(len(self.received), 6)
        self.assertIn("daemon_hot", self.go_top(self.received[-2][2]["profile"]))
        self.assertIn("daemon_hot", self.go_top(self.received[0][2]["profile"]))
        self.assertEqual(os.listdir(os.path.join(self.tmp.name, "spool")), [])  # all delivered, the last one too

    def test_full_spool_drops_oldest(self):
        daemon = self.start_daemon("--spool-max", "4096")
        wait_for(lambda: self.metrics()["pyprofd_pushes_dropped_total"] >= 2, 30, "dropped windows")
        m = self.metrics()
        self.assertLessEqual(m["pyprofd_spool_bytes"], 4096 + 8192)  # the bound, or the one newest window
        self.receiver_up()
        wait_for(lambda: len(self.received) >= 2, 60, "the windows left in the spool")
        daemon.send_signal(signal.SIGTERM)
        daemon.communicate(timeout=30)
        starts = [int(q["from"][0]) for _, q, _ in self.received]
        self.assertEqual(starts, sorted(starts))
        self.assertIn("dropped the window", open(self.log).read())


if __name__ == "__main__":
    common.main(globals())
