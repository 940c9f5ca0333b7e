"""Issue 14's benchmarks of `pyprofd daemon`.

demo:  the daemon at its defaults (--rate 100, --window 60, pprof) on the demo service
       (gunicorn + 2 UvicornWorkers, Debian python3; followed with --pid MASTER
       --subprocesses) under bounded ab load: the service's RPS without / with / without
       the daemon (SECONDS each), the daemon's CPU (% of one core) and RSS at start and
       end of its phase, windows written.
scale: `--all --rate 19` on a host running N small Python processes (a mix of idle
       and lightly busy ones; every second one exits and a new one starts, busy for
       its first 2 s): the daemon's CPU (rescans included), RSS, targets attached, and
       for each new process the time from its start to its attach (daemon log) and to
       its first sample (/targets' first_sample, polled every 2 s).

demo-push: demo, the daemon also pushing every window to a local receiver (--push).
onoff: issue 16's benchmark. The daemon at its defaults, pushing to a local receiver,
       runs beside the loaded demo service for the whole run; the run alternates
       PHASE-second phases in which the daemon is stopped (SIGSTOP: costs nothing) and
       running, each phase its own bounded `ab`, so slow drifts of a shared machine fall
       on both sides alike. Prints each phase's RPS, the ratio of the running phases'
       median to the stopped ones', the daemon's CPU while running, its RSS at every
       phase boundary, windows written and pushed. PYPROFD_BENCH_ARGS adds daemon options
       (e.g. "--keep 1 --window 10": RSS without the --keep windows held for /recent).

Usage: python3 bench/daemon_bench.py PYPROFD demo|demo-push [SECONDS]
       python3 bench/daemon_bench.py PYPROFD onoff [SECONDS_RUNNING] [PHASE]
       python3 bench/daemon_bench.py PYPROFD scale [SECONDS] [N]"""
import http.server
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from datetime import datetime

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import demo_rps  # noqa: E402  (the demo service's start/stop, shared with item 4)

TICKS = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def rss_mib(pid):
    with open("/proc/%d/statm" % pid) as f:
        return int(f.read().split()[1]) * PAGE / 2**20


def start_daemon(pyprofd, args, tmp):
    log = os.path.join(tmp, "daemon.log")
    proc = subprocess.Popen([pyprofd, "daemon"] + args + ["--listen", "127.0.0.1:0", "--log-file", log],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(200):
        text = open(log).read() if os.path.exists(log) else ""
        m = re.search(r"listening on (http://127\.0\.0\.1:\d+)", text)
        if m:
            return proc, m.group(1), log
        time.sleep(0.05)
    raise RuntimeError("daemon did not start")


def metrics(base):
    with urllib.request.urlopen(base + "/metrics", timeout=10) as r:
        text = r.read().decode()
    return {m.group(1): float(m.group(2)) for m in re.finditer(r"^(pyprofd_\w+) (\S+)$", text, re.M)}


class Receiver(http.server.BaseHTTPRequestHandler):
    """Stands in for Pyroscope's /ingest: counts POSTs and their bytes, answers 200."""
    def do_POST(self):
        n = len(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.posts.append(n)
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def demo(pyprofd, seconds, push=False):
    port = demo_rps.free_port()
    service = demo_rps.start_service(port, yappi=False)
    tmp = tempfile.mkdtemp(prefix="pyprofd-bench-")
    extra, receiver = [], None
    if push:  # --push to a local receiver (http.server on 127.0.0.1)
        receiver = start_receiver()
        extra = ["--push", "http://127.0.0.1:%d" % receiver.server_address[1], "--spool-dir", tmp + "/spool"]
    try:
        demo_rps.ab_rps(port, 5)  # warm-up
        before = demo_rps.ab_rps(port, seconds)
        daemon, base, _ = start_daemon(pyprofd, ["--pid", str(service.pid), "--subprocesses", "--dir", tmp] + extra,
                                       tmp)
        time.sleep(2)  # attached (master and both workers)
        cpu0, rss0, t0 = cpu_seconds(daemon.pid), rss_mib(daemon.pid), time.monotonic()
        with_daemon = demo_rps.ab_rps(port, seconds)
        cpu1, rss1, t1 = cpu_seconds(daemon.pid), rss_mib(daemon.pid), time.monotonic()
        m = metrics(base)
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(timeout=30)
        after = demo_rps.ab_rps(port, seconds)
    finally:
        demo_rps.stop(service)
    base_rps = (before + after) / 2
    print("load: ab -k -c 32 -t %d per phase; load average %s" % (seconds, open("/proc/loadavg").read().split()[:3]))
    print("RPS without %.1f, with %.1f, without again %.1f: ratio %.3f" % (before, with_daemon, after, with_daemon / base_rps))
    print("daemon CPU %.2f %% of a core over %.0f s; RSS %.1f MiB -> %.1f MiB" % (
        100 * (cpu1 - cpu0) / (t1 - t0), t1 - t0, rss0, rss1))
    print("targets %d, samples %d, ticks %d, sampling rate %.1f Hz, windows written %d (files in --dir: %d)" % (
        m["pyprofd_targets_attached"], m["pyprofd_samples_total"], m["pyprofd_ticks_total"],
        m["pyprofd_sampling_rate_hertz"], m["pyprofd_windows_written_total"], len(os.listdir(tmp))))
    if receiver:
        print("pushed: %d sent during the phase (metrics), %d received in all (incl. the last at SIGTERM), "
              "%d failed, %d dropped, bodies %s bytes" % (
                  m["pyprofd_pushes_sent_total"], len(receiver.posts), m["pyprofd_pushes_failed_total"],
                  m["pyprofd_pushes_dropped_total"], receiver.posts))
        receiver.shutdown()


def start_receiver():
    receiver = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    receiver.posts = []
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    return receiver


def onoff(pyprofd, running_s, phase):
    port = demo_rps.free_port()
    service = demo_rps.start_service(port, yappi=False)
    tmp = tempfile.mkdtemp(prefix="pyprofd-bench-")
    receiver = start_receiver()
    args = ["--pid", str(service.pid), "--subprocesses", "--dir", tmp, "--spool-dir", tmp + "/spool",
            "--push", "http://127.0.0.1:%d" % receiver.server_address[1]] + os.environ.get("PYPROFD_BENCH_ARGS", "").split()
    rps = {"on": [], "off": []}
    rss, cpu_on, time_on = [], 0.0, 0.0
    try:
        demo_rps.ab_rps(port, 5)  # warm-up
        daemon, base, _ = start_daemon(pyprofd, args, tmp)
        time.sleep(2)  # attached (master and both workers)
        started = time.monotonic()
        rss.append(rss_mib(daemon.pid))
        for i in range(2 * max(1, running_s // phase)):
            state = "off" if i % 2 == 0 else "on"
            if state == "off":
                daemon.send_signal(signal.SIGSTOP)
            cpu0, t0 = cpu_seconds(daemon.pid), time.monotonic()
            rps[state].append(demo_rps.ab_rps(port, phase))
            if state == "on":
                cpu_on += cpu_seconds(daemon.pid) - cpu0
                time_on += time.monotonic() - t0
            else:
                daemon.send_signal(signal.SIGCONT)
            rss.append(rss_mib(daemon.pid))
            print("phase %2d %-3s %6.1f req/s  daemon RSS %.1f MiB" % (i, state, rps[state][-1], rss[-1]), flush=True)
        m = metrics(base)
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(timeout=30)
        elapsed = time.monotonic() - started
    finally:
        demo_rps.stop(service)
        receiver.shutdown()
    on, off = statistics.median(rps["on"]), statistics.median(rps["off"])
    print("load: ab -k -c 32 -t %d per phase; load average %s" % (phase, open("/proc/loadavg").read().split()[:3]))
    print("RPS median running %.1f, stopped %.1f: ratio %.3f (per phase: running %s, stopped %s)" % (
        on, off, on / off, rps["on"], rps["off"]))
    print("daemon CPU while running %.2f %% of a core over %.0f s; RSS %.1f -> %.1f MiB over %.0f s (max %.1f)" % (
        100 * cpu_on / time_on, time_on, rss[0], rss[-1], elapsed, max(rss)))
    print("samples %d, ticks %d, windows written %d, pushes sent %d, failed %d, dropped %d; received %d in all "
          "(the last at SIGTERM), bodies %d-%d bytes" % (
              m["pyprofd_samples_total"], m["pyprofd_ticks_total"], m["pyprofd_windows_written_total"],
              m["pyprofd_pushes_sent_total"], m["pyprofd_pushes_failed_total"], m["pyprofd_pushes_dropped_total"],
              len(receiver.posts), min(receiver.posts or [0]), max(receiver.posts or [0])))


SMALL = r"""
import sys, time
busy_start, duty = float(sys.argv[1]), float(sys.argv[2])
def spin(s):
    end = time.perf_counter() + s
    while time.perf_counter() < end:
        pass
spin(busy_start)
while True:
    spin(0.1 * duty)
    time.sleep(0.1 * (1 - duty))
"""


def spawn(busy_start, duty):
    return subprocess.Popen(["/usr/bin/python3", "-c", SMALL, str(busy_start), str(duty)]), time.time()


def log_attaches(log):
    out = {}
    for line in open(log, errors="replace"):
        m = re.match(r"^(\S+)Z pyprofd\[\d+\] info: attached process (\d+) ", line)
        if m:
            out[int(m.group(2))] = datetime.fromisoformat(m.group(1) + "+00:00").timestamp()
    return out


def poll_first_samples(base, born, first_sample):
    # The daemon's own time of each new process's first sample (its clock, not the poll's).
    with urllib.request.urlopen(base + "/targets", timeout=10) as r:
        for t in json.loads(r.read()):
            if t["pid"] in born and t.get("first_sample"):
                first_sample[t["pid"]] = t["first_sample"]


def scale(pyprofd, seconds, n):
    tmp = tempfile.mkdtemp(prefix="pyprofd-bench-")
    # A quarter lightly busy (5 % of a core), the rest idle; a tenth churning.
    procs = [spawn(0, 0.05 if i % 4 == 0 else 0)[0] for i in range(n)]
    churn, born = [], {}
    try:
        time.sleep(3)
        daemon, base, log = start_daemon(pyprofd, ["--all", "--rate", "19", "--max-cpu", "0"], tmp)
        time.sleep(3)  # first rescan and attaches done
        cpu0, rss0, t0 = cpu_seconds(daemon.pid), rss_mib(daemon.pid), time.monotonic()
        perf = None
        if os.environ.get("PYPROFD_BENCH_PERF"):  # where the daemon's time goes: perf report -i FILE
            perf = subprocess.Popen(["perf", "record", "-q", "-F", "499", "--call-graph", "dwarf,16384", "-p", str(daemon.pid),
                                     "-o", os.environ["PYPROFD_BENCH_PERF"]], stderr=subprocess.DEVNULL)
        first_sample, end = {}, time.monotonic() + seconds
        next_spawn = next_poll = time.monotonic()
        while time.monotonic() < end:
            if time.monotonic() >= next_spawn:
                next_spawn += 1.0
                if len(churn) >= n // 10:
                    old = churn.pop(0)
                    old.kill()
                    old.wait()
                p, started = spawn(2.0, 0.0)
                churn.append(p)
                born[p.pid] = started
            if time.monotonic() >= next_poll:  # a new process lives ~10 s: seen in 2 polls or more
                next_poll += 2.0
                poll_first_samples(base, born, first_sample)
            time.sleep(0.05)
        poll_first_samples(base, born, first_sample)
        cpu1, rss1, t1 = cpu_seconds(daemon.pid), rss_mib(daemon.pid), time.monotonic()
        m = metrics(base)
        if perf:
            perf.send_signal(signal.SIGINT)
            perf.wait(timeout=60)
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(timeout=30)
    finally:
        for p in procs + churn:
            p.kill()
            p.wait()
    attached = log_attaches(log)
    to_attach = sorted(attached[p] - born[p] for p in born if p in attached)
    to_sample = sorted(first_sample[p] - born[p] for p in born if p in first_sample)
    print("%d small processes (%d busy at 5 %%, %d churning: one replaced per second); load average %s" % (
        n, (n + 3) // 4, n // 10, open("/proc/loadavg").read().split()[:3]))
    print("daemon CPU %.2f %% of a core over %.0f s; RSS %.1f MiB -> %.1f MiB; targets attached %d; sampling rate %.1f Hz" % (
        100 * (cpu1 - cpu0) / (t1 - t0), t1 - t0, rss0, rss1, m["pyprofd_targets_attached"],
        m["pyprofd_sampling_rate_hertz"]))

    def q(v):
        return "n=%d median %.2f s, p90 %.2f s, max %.2f s" % (
            len(v), statistics.median(v), v[int(0.9 * (len(v) - 1))], v[-1]) if v else "n=0"
    print("new process start -> attach (log): %s" % q(to_attach))
    print("new process start -> first sample (/targets first_sample, polled every 2 s): %s; %d of %d new processes never sampled" % (
        q(to_sample), len(born) - len(to_sample), len(born)))


def main():
    pyprofd = os.path.abspath(sys.argv[1])
    mode = sys.argv[2]
    seconds = int(sys.argv[3]) if len(sys.argv) > 3 else (300 if mode == "demo" else 60)
    if mode == "onoff":
        onoff(pyprofd, int(sys.argv[3]) if len(sys.argv) > 3 else 300, int(sys.argv[4]) if len(sys.argv) > 4 else 30)
    elif mode in ("demo", "demo-push"):
        demo(pyprofd, seconds, push=(mode == "demo-push"))
    else:
        scale(pyprofd, seconds, int(sys.argv[4]) if len(sys.argv) > 4 else 100)


if __name__ == "__main__":
    main()
