"""Security (issue 20, part 9).

- pyprofd never writes to its target and never stops it: `record` (with --subprocesses and
  --async, at 1000 Hz) and `dump` run under `strace -f`, which must show no
  process_vm_writev, no ptrace and no signal sent (kill/tkill/tgkill with a signal other
  than 0); meanwhile every thread of the target is polled and must never be seen stopped
  (state t or T in /proc/PID/task/TID/stat).
- Files are written without following symlinks and with mode 0600: a symlink planted at
  the output path is replaced (its target untouched), symlinks planted at every temp name
  the process will try first are skipped; daemon windows are 0600 too.
- HTTP: the socket is bound to 127.0.0.1 only; paths other than the endpoints get 404;
  an over-long request line (414), an over-long header (400) and a body over 16 KiB (413)
  are refused; a client that sends nothing is disconnected (read timeout 5 s); a client
  that trickles its headers a byte every 2 s is disconnected at the per-request cap (30 s,
  6 s here through PYPROFD_HTTP_REQUEST_SECONDS) while others are served, and a profile
  longer than the cap is not cut (a handler's own wait is not the client's time); once the
  daemon is told to stop, a trickling client gets 2 s, not the rest of its 30 s.
"""
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

CONFIG = {}
RECORD_TARGET = os.path.join(common.TARGETS, "record_target.py")
TREE_TARGET = os.path.join(common.TARGETS, "tree_target.py")


def thread_states(pid):
    states = []
    try:
        tids = os.listdir("/proc/%d/task" % pid)
    except FileNotFoundError:
        return states
    for tid in tids:
        try:
            with open("/proc/%d/task/%s/stat" % (pid, tid)) as f:
                states.append(f.read().rsplit(")", 1)[1].split()[0])
        except (FileNotFoundError, ProcessLookupError, IndexError):
            pass
    return states


class Watcher(threading.Thread):
    """Polls the target's thread states until stopped; remembers every state seen."""

    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid, self.seen, self.polls, self.done = pid, set(), 0, threading.Event()

    def run(self):
        while not self.done.is_set():
            self.seen.update(thread_states(self.pid))
            self.polls += 1
            time.sleep(0.001)


class NeverWritesNorStops(unittest.TestCase):
    def setUp(self):
        if not shutil.which("strace"):
            self.skipTest("strace is not installed")
        self.tmp = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.tmp)

    def traced(self, *args):
        trace = os.path.join(self.tmp, "strace.%d" % len(os.listdir(self.tmp)))
        res = subprocess.run(["strace", "-f", "-qq", "-o", trace, "-e",
                              "trace=process_vm_readv,process_vm_writev,ptrace,kill,tkill,tgkill,pidfd_send_signal",
                              CONFIG["pyprofd"]] + list(args), capture_output=True, timeout=120,
                             # a sanitized build: LeakSanitizer's own ptrace at exit is not pyprofd's
                             env=dict(os.environ, ASAN_OPTIONS="detect_leaks=0"))
        if res.returncode != 0 and b"ptrace" in res.stderr and b"strace:" in res.stderr:
            self.skipTest("strace cannot trace here: " + res.stderr.decode(errors="replace"))
        with open(trace) as f:
            return res, f.read()

    def assertNoWriteNorSignal(self, trace):
        # Control: strace did see pyprofd read the target.
        self.assertRegex(trace, r"process_vm_readv\(", trace[:2000])
        for line in trace.splitlines():
            if "+++" in line or "---" in line:
                continue  # exits and signals received, not calls made
            self.assertNotRegex(line, r"\b(process_vm_writev|ptrace|pidfd_send_signal)\(", trace)
            call = re.search(r"\b(kill|tkill|tgkill)\((.*)\)", line)
            if call:  # signal 0 only checks that a process exists
                self.assertRegex(call.group(2), r"(, 0|SIG_0)$", line)

    def test_record_and_dump(self):
        with common.Target(CONFIG["python"], TREE_TARGET) as tree:
            tree.wait_ready()
            watcher = Watcher(tree.pid)
            watcher.start()
            res, trace = self.traced("record", "--pid", str(tree.pid), "--subprocesses", "--async", "--rate",
                                     "1000", "--duration", "2", "-o", os.path.join(self.tmp, "p.stats"))
            self.assertEqual(res.returncode, 0, res.stderr)
            self.assertNoWriteNorSignal(trace)
            dres, dtrace = self.traced("dump", "--pid", str(tree.pid))
            self.assertEqual(dres.returncode, 0, dres.stderr)
            self.assertIn(b"Thread", dres.stdout)
            self.assertNoWriteNorSignal(dtrace)
            watcher.done.set()
            watcher.join()
            self.assertGreater(watcher.polls, 100)
            self.assertTrue(watcher.seen, "no thread state read")
            self.assertFalse(watcher.seen & {"t", "T"}, watcher.seen)
            stats = common.read_pstats(os.path.join(self.tmp, "p.stats"), CONFIG["python"])[1]
            self.assertTrue(stats)


class PrivateFilesNoSymlinks(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.tmp)
        self.victim = os.path.join(self.tmp, "victim")
        with open(self.victim, "w") as f:
            f.write("precious")

    def record(self, out, prelude=""):
        # exec keeps the shell's pid, so $$ is pyprofd's pid: the temp names it will try.
        script = prelude + 'exec "$PYPROFD" record --rate 200 -o "$OUT" -- "$PYTHON" "$TARGET" -1 -1 ratio 1'
        env = dict(os.environ, PYPROFD=CONFIG["pyprofd"], PYTHON=CONFIG["python"], TARGET=RECORD_TARGET, OUT=out,
                   VICTIM=self.victim, D=self.tmp)
        return subprocess.run(["sh", "-c", script], env=env, capture_output=True, timeout=120)

    def assertPrivateProfile(self, path):
        st = os.lstat(path)
        self.assertTrue(os.path.isfile(path) and not os.path.islink(path))
        self.assertEqual(st.st_mode & 0o7777, 0o600)
        self.assertTrue(common.read_pstats(path, CONFIG["python"])[1])
        with open(self.victim) as f:
            self.assertEqual(f.read(), "precious")

    def test_symlink_at_output_is_replaced(self):
        out = os.path.join(self.tmp, "p.stats")
        os.symlink(self.victim, out)
        res = self.record(out)
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertPrivateProfile(out)

    def test_symlinks_at_temp_names_are_skipped(self):
        out = os.path.join(self.tmp, "p.stats")
        prelude = 'for n in 0 1 2 3 4 5 6 7 8 9; do ln -s "$VICTIM" "$D/.p.stats.tmp.$$.$n"; done\n'
        res = self.record(out, prelude + "umask 0\n")
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertPrivateProfile(out)
        planted = [n for n in os.listdir(self.tmp) if n.startswith(".p.stats.tmp.")]
        self.assertEqual(len(planted), 10, planted)  # still symlinks, not written through
        self.assertTrue(all(os.path.islink(os.path.join(self.tmp, n)) for n in planted))


class HttpLimits(unittest.TestCase):
    REQUEST_CAP = 6  # seconds; the default (30) would make the trickle test slow

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp()
        cls.target = common.Target(CONFIG["python"], RECORD_TARGET, "forever")
        cls.target.wait_ready()
        cls.log = os.path.join(cls.tmp, "daemon.log")
        cls.dir = os.path.join(cls.tmp, "windows")
        os.mkdir(cls.dir)
        env = dict(os.environ, PYPROFD_HTTP_REQUEST_SECONDS=str(cls.REQUEST_CAP))
        cls.daemon = subprocess.Popen([CONFIG["pyprofd"], "daemon", "--pid", str(cls.target.pid), "--listen",
                                       "127.0.0.1:0", "--log-file", cls.log, "--window", "1", "--dir", cls.dir,
                                       "--max-cpu", "0"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
        cls.port = common.wait_for(cls.find_port, 30, "the daemon's listening line")

    @classmethod
    def tearDownClass(cls):
        cls.daemon.send_signal(signal.SIGTERM)
        try:
            cls.daemon.wait(timeout=30)
        except subprocess.TimeoutExpired:
            cls.daemon.kill()
            cls.daemon.wait()
        cls.target.stop()
        shutil.rmtree(cls.tmp)

    @classmethod
    def find_port(cls):
        try:
            with open(cls.log) as f:
                m = re.search(r"listening on http://127\.0\.0\.1:(\d+)", f.read())
        except FileNotFoundError:
            return None
        return int(m.group(1)) if m else None

    def status(self, path, method="GET"):
        req = urllib.request.Request("http://127.0.0.1:%d%s" % (self.port, path), method=method)
        try:
            return urllib.request.urlopen(req, timeout=30).status
        except urllib.error.HTTPError as e:
            return e.code

    def raw(self, data, timeout=30):
        """Sends data, returns (status line, seconds until the server closed)."""
        s = socket.create_connection(("127.0.0.1", self.port), timeout=timeout)
        t0 = time.monotonic()
        try:
            if data:
                s.sendall(data)
            got = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                got += chunk
        except (ConnectionResetError, BrokenPipeError):
            pass
        finally:
            s.close()
        return got.split(b"\r\n", 1)[0].decode(errors="replace"), time.monotonic() - t0

    def test_bound_to_loopback_only(self):
        listening = []
        with open("/proc/net/tcp") as f:
            for line in f.readlines()[1:]:
                local, state = line.split()[1], line.split()[3]
                addr, port = local.split(":")
                if int(port, 16) == self.port and state == "0A":
                    listening.append(addr)
        self.assertEqual(listening, ["0100007F"])  # 127.0.0.1, little-endian hex
        with open(os.path.join(common.SOURCE_DIR, "dist", "pyprofd.conf")) as f:
            self.assertRegex(f.read(), r"(?m)^listen\s*=\s*127\.0\.0\.1:\d+$")

    def test_only_its_endpoints(self):
        self.assertEqual(self.status("/healthz"), 200)
        self.assertEqual(self.status("/metrics"), 200)
        for path in ["/", "/index.html", "/debug/pprof/", "/debug/pprof/cmdline", "/debug/pprof/heap",
                     "/metrics/../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd", "/etc/passwd", "/targets/1",
                     "/healthz.bak", "/" + os.path.basename(self.dir)]:
            self.assertEqual(self.status(path), 404, path)
        for method in ["POST", "PUT", "DELETE"]:
            self.assertIn(self.status("/metrics", method), (400, 404, 405), method)

    def test_request_size_caps(self):
        line, _ = self.raw(b"GET /metrics?" + b"a" * 20000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertIn(" 414 ", line)
        line, _ = self.raw(b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 20000 + b"\r\n\r\n")
        self.assertIn(" 400 ", line)
        body = b"c" * 100000  # GET bodies are never read; a POST's is refused past 16 KiB
        line, _ = self.raw(b"POST /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: %d\r\n\r\n"
                           % len(body) + body)
        self.assertIn(" 413 ", line)
        self.assertEqual(self.status("/healthz"), 200)  # still serving

    def test_silent_client_is_disconnected(self):
        line, secs = self.raw(b"", timeout=60)
        self.assertEqual(line, "")
        self.assertLess(secs, 30)  # bounded: the read timeout is 5 s
        line, secs = self.raw(b"GET /metrics HTTP/1.1\r\nHost: x\r\n", timeout=60)  # headers never end
        self.assertLess(secs, 30)

    def trickle(self, data, period, limit):
        """Sends data a byte every period s; returns the seconds until the server closed
        the connection, None if it was still open after limit s."""
        s = socket.create_connection(("127.0.0.1", self.port), timeout=30)
        t0 = time.monotonic()
        try:
            for i in range(len(data)):
                if time.monotonic() - t0 > limit:
                    return None
                s.sendall(data[i:i + 1])
                readable, _, _ = select.select([s], [], [], period)
                if readable and s.recv(65536) == b"":
                    return time.monotonic() - t0
            return None
        except (ConnectionResetError, BrokenPipeError):
            return time.monotonic() - t0
        finally:
            s.close()

    def test_trickling_client_is_cut_at_the_request_cap(self):
        profile = {}

        def long_profile():  # longer than the cap: its wait is the handler's, not the client's
            t0 = time.monotonic()
            profile["status"] = self.status("/debug/pprof/profile?seconds=%d" % (self.REQUEST_CAP + 2))
            profile["seconds"] = time.monotonic() - t0

        healthy = []
        poller_stop = threading.Event()

        def poll_healthz():  # the server keeps answering others meanwhile
            while not poller_stop.wait(0.5):
                t0 = time.monotonic()
                healthy.append((self.status("/healthz"), time.monotonic() - t0))

        threads = [threading.Thread(target=long_profile), threading.Thread(target=poll_healthz)]
        for t in threads:
            t.start()
        # A header byte every 2 s: never 5 s of silence, so only the request cap ends it.
        closed_after = self.trickle(b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"s" * 64, 2, 14)
        poller_stop.set()
        for t in threads:
            t.join(60)
        self.assertIsNotNone(closed_after, "still connected after 14 s")
        self.assertGreater(closed_after, self.REQUEST_CAP - 0.5)
        self.assertLess(closed_after, self.REQUEST_CAP + 3)
        self.assertEqual(profile.get("status"), 200)
        self.assertGreater(profile["seconds"], self.REQUEST_CAP + 1.5)
        self.assertGreater(len(healthy), 5)
        self.assertTrue(all(code == 200 and secs < 5 for code, secs in healthy), healthy)

    def test_window_files_are_private(self):
        common.wait_for(lambda: os.listdir(self.dir), 30, "a window file")
        for name in os.listdir(self.dir):
            if not name.startswith("."):
                self.assertEqual(os.lstat(os.path.join(self.dir, name)).st_mode & 0o7777, 0o600, name)


class HttpStop(unittest.TestCase):
    def test_trickling_client_does_not_hold_up_the_exit(self):
        """At its default 30 s cap, a trickling client is given 2 s once the daemon stops."""
        tmp = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, tmp)
        log = os.path.join(tmp, "daemon.log")
        daemon = subprocess.Popen([CONFIG["pyprofd"], "daemon", "--match", "no-such-process-for-cli-security",
                                   "--listen", "127.0.0.1:0", "--log-file", log, "--dir", tmp],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.addCleanup(common.terminate, daemon)

        def port():
            with open(log) as f:
                m = re.search(r"listening on http://127\.0\.0\.1:(\d+)", f.read())
            return int(m.group(1)) if m else None
        s = socket.create_connection(("127.0.0.1", common.wait_for(lambda: os.path.exists(log) and port(), 30,
                                                                   "the listening line")), timeout=30)
        self.addCleanup(s.close)
        s.sendall(b"GET /metrics HTTP/1.1\r\n")
        time.sleep(1)
        t0 = time.monotonic()
        daemon.send_signal(signal.SIGTERM)
        exited = None
        while time.monotonic() - t0 < 20 and exited is None:
            try:
                s.sendall(b"x")  # a byte a second: never the 5 s read timeout
            except OSError:
                pass
            try:
                exited = daemon.wait(timeout=1)
            except subprocess.TimeoutExpired:
                pass
        self.assertEqual(exited, 0, "still running %.0f s after SIGTERM" % (time.monotonic() - t0))
        self.assertLess(time.monotonic() - t0, 8)


if __name__ == "__main__":
    common.main(globals())
