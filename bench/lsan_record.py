"""Issue 20, part 2: a long recording by the ASan/LSan build (build-sanitize/pyprofd).
Debian's gunicorn (2 sync workers, --max-requests 50, 127.0.0.1, tests/targets/wsgi_app.py)
fed ~20 requests a second, so workers are replaced every few seconds and pyprofd attaches to
and drops processes all along; `record --pid MASTER --subprocesses --async --duration SECONDS`
writes pstats and pprof. LeakSanitizer checks at exit: any leak (or ASan/UBSan report) makes
pyprofd's exit code non-zero and prints the report, shown here.

Usage: python3 bench/lsan_record.py build-sanitize/pyprofd [SECONDS] [OUT_DIR]"""
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    pyprofd = os.path.abspath(sys.argv[1])
    seconds = int(sys.argv[2]) if len(sys.argv) > 2 else 600
    out = sys.argv[3] if len(sys.argv) > 3 else tempfile.mkdtemp(prefix="pyprofd-lsan-")
    os.makedirs(out, exist_ok=True)
    port = free_port()
    master = subprocess.Popen(["/usr/bin/python3", "-m", "gunicorn", "-w", "2", "-k", "sync", "--max-requests", "50",
                               "-b", "127.0.0.1:%d" % port, "--chdir", os.path.join(ROOT, "tests", "targets"),
                               "--log-level", "warning", "wsgi_app:app"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(3)
        env = dict(os.environ, ASAN_OPTIONS="detect_leaks=1", UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1")
        rec = subprocess.Popen([pyprofd, "record", "--pid", str(master.pid), "--subprocesses", "--async",
                                "--duration", str(seconds), "-o", out + "/lsan.stats", "-o", out + "/lsan.pb.gz"],
                               env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        requests = 0
        end = time.monotonic() + seconds + 1
        while time.monotonic() < end and rec.poll() is None:
            try:
                urllib.request.urlopen("http://127.0.0.1:%d/" % port, timeout=5).read()
                requests += 1
            except OSError:
                pass
            time.sleep(0.05)
        _, err = rec.communicate(timeout=120)
    finally:
        master.send_signal(signal.SIGTERM)
        master.wait(timeout=30)
    err = err.decode(errors="replace")
    print(err)
    print("requests: %d over %d s (workers replaced every 50)" % (requests, seconds))
    print("pyprofd exit code: %d; LeakSanitizer report: %s" % (rec.returncode, "yes" if "LeakSanitizer" in err else "none"))
    sys.exit(0 if rec.returncode == 0 and "Sanitizer" not in err else 1)


if __name__ == "__main__":
    main()
