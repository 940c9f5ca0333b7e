"""Issue 20, part 8: daemon soak. The demo service (gunicorn + 2 UvicornWorkers, Debian
python3, 127.0.0.1) with --max-requests 2000 (so workers restart every few hundred
seconds under the load), bounded `ab -c 2` load in 50 s bursts, and `pyprofd daemon --pid
MASTER --subprocesses --dir DIR --window 60 --keep 5` beside it for MINUTES (--keep also
bounds the windows held in memory for /debug/pprof/recent, so RSS should level off after 5
minutes). Every minute: the daemon's RSS and open file descriptors, /metrics (windows
written, targets, samples). At the end: SIGTERM, then checks from the daemon's log that
every window from the first to the last was written (no gap), that
pyprofd_windows_written_total matches the log, that DIR holds the newest 5, and prints the
per-minute table and a text plot of RSS and fds (for RELIABILITY.md). SIGTERM to this
script ends the run early, cleanly.

Usage: python3 bench/soak.py PYPROFD [MINUTES] [OUT_DIR]"""
import calendar
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import daemon_bench  # noqa: E402
import demo_rps  # noqa: E402

PAGE = os.sysconf("SC_PAGE_SIZE")
KEEP = 5


def rss_mib(pid):
    with open("/proc/%d/statm" % pid) as f:
        return int(f.read().split()[1]) * PAGE / 2**20


def fds(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def start_service(port):
    cmd = ["/usr/bin/python3", "-m", "gunicorn", "-w", "2", "-k", "uvicorn.workers.UvicornWorker",
           "-b", "127.0.0.1:%d" % port, "--max-requests", "2000", "--max-requests-jitter", "200",
           "--chdir", os.path.join(demo_rps.ROOT, "examples"), "--log-level", "warning", "app:app"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(600):
        try:
            if len(demo_rps.workers_of(proc.pid)) >= 2:
                subprocess.run(["curl", "-s", "-o", "/dev/null", "http://127.0.0.1:%d/chat" % port], timeout=10)
                return proc
        except (OSError, subprocess.TimeoutExpired):
            pass
        time.sleep(0.1)
    demo_rps.stop(proc)
    raise RuntimeError("service did not start")


def start_daemon(pyprofd, master, out_dir):
    return daemon_bench.start_daemon(pyprofd, ["--pid", str(master), "--subprocesses", "--dir", out_dir + "/windows",
                                               "--window", "60", "--keep", str(KEEP), "--formats", "pprof"], out_dir)


def written_stamps(log):
    with open(log) as f:
        return sorted(set(re.findall(r"wrote \S+/pyprofd-(\d{8}T\d{6}Z)\.pb\.gz", f.read())))


def stamps(windows_dir):
    return sorted(m.group(1) for m in (re.match(r"pyprofd-(\d{8}T\d{6}Z)\.pb\.gz$", n) for n in os.listdir(windows_dir))
                  if m)


def plot(rows, key, width=50):
    lo, hi = min(r[key] for r in rows), max(r[key] for r in rows)
    span = hi - lo or 1
    return ["%3d min %8.2f |%s" % (r["minute"], r[key], "#" * (1 + int((r[key] - lo) / span * width))) for r in rows]


def main():
    pyprofd = os.path.abspath(sys.argv[1])
    minutes = int(sys.argv[2]) if len(sys.argv) > 2 else 60
    out_dir = sys.argv[3] if len(sys.argv) > 3 else tempfile.mkdtemp(prefix="pyprofd-soak-")
    os.makedirs(out_dir + "/windows", exist_ok=True)
    port = demo_rps.free_port()
    service = start_service(port)
    daemon, base, log = start_daemon(pyprofd, service.pid, out_dir)
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    rows, workers_seen = [], set()
    start = time.monotonic()
    try:
        for minute in range(1, minutes + 1):
            load = subprocess.Popen(["ab", "-q", "-c", "2", "-t", "50", "-n", "1000000", "-s", "10",
                                     "http://127.0.0.1:%d/chat" % port],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            while time.monotonic() < start + 60 * minute:
                workers_seen.update(demo_rps.workers_of(service.pid))
                time.sleep(1)
            load.wait(timeout=120)
            m = daemon_bench.metrics(base)
            row = {"minute": minute, "rss": rss_mib(daemon.pid), "fds": fds(daemon.pid),
                   "written": int(m["pyprofd_windows_written_total"]), "files": len(written_stamps(log)),
                   "targets": int(m["pyprofd_targets_attached"]), "samples": int(m["pyprofd_samples_total"]),
                   "workers": len(workers_seen)}
            rows.append(row)
            print("minute %(minute)d: RSS %(rss).2f MiB, fds %(fds)d, windows written %(written)d, files %(files)d, "
                  "targets %(targets)d, samples %(samples)d, workers seen %(workers)d" % row, flush=True)
    except KeyboardInterrupt:
        print("stopped early, after %d minutes" % len(rows), flush=True)
    finally:
        daemon.send_signal(signal.SIGTERM)
        rc = daemon.wait(timeout=60)
        demo_rps.stop(service)
    names = written_stamps(log)
    gaps = [(a, b) for a, b in zip(names, names[1:]) if calendar.timegm(time.strptime(b, "%Y%m%dT%H%M%SZ")) -
            calendar.timegm(time.strptime(a, "%Y%m%dT%H%M%SZ")) != 60]
    errors = [l for l in open(log) if "[error]" in l or "[critical]" in l]
    print("\ndaemon exit code %d; %d windows written (log) from %s to %s; gaps: %s; error lines in the log: %d" % (
        rc, len(names), names[0] if names else "-", names[-1] if names else "-", gaps or "none", len(errors)))
    if rows:
        print("/metrics windows written at the last sample: %d; written per the log then: %d" % (
            rows[-1]["written"], rows[-1]["files"]))
    print("files in DIR: %s (the newest %d kept)" % (stamps(out_dir + "/windows"), KEEP))
    print("workers seen (restarts included): %d" % len(workers_seen))
    print("\n| minute | RSS MiB | fds | windows written (metrics) | written (log) | targets | samples |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print("| %(minute)d | %(rss).2f | %(fds)d | %(written)d | %(files)d | %(targets)d | %(samples)d |" % r)
    print("\nRSS (MiB)")
    print("\n".join(plot(rows, "rss")))
    print("\nopen fds")
    print("\n".join(plot(rows, "fds")))


if __name__ == "__main__":
    main()
