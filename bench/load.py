"""Issue 15: pyprofd's cost under real load. Starts the demo service (examples/app.py:
gunicorn master + 2 UvicornWorkers under Debian's python3, 127.0.0.1 only), drives it
with `ab -c 20` (bounded in count and time), and records the whole tree through the
master's pid (`record --pid MASTER --subprocesses`) in each mode. Per run it prints
pyprofd's whole-process CPU (user + sys of the child, from wait4, = /proc/PID/stat at
exit) per tick and per sample, the samples and ticks achieved, the invalid samples,
the first-sample latency from the summary and the service's requests per second.

Several builds (--pyprofd A --pyprofd B) are run interleaved, mode by mode, on the same
service under the same load, so their ratios are comparable within one run.

usage: python3 bench/load.py --pyprofd BUILD/pyprofd [--pyprofd OTHER] [--seconds 20]
                             [--rate 100] [--reps 1] [--modes wall,wall-async,cpu,cpu-async]
                                          [--wrap 'strace -c -f -o FILE'] [--austin AUSTIN3]
Austin (--austin) runs in wall and cpu (-s) mode; it has no ticks, so only per sample.
"""
import argparse
import os
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench"))
from bench import parse_summary  # noqa: E402  (the summary parser shared with bench.py)
import demo_rps  # noqa: E402  (the demo service's start/stop, shared with bench.py item 4)
from demo_rps import free_port, stop  # noqa: E402

MODES = {
    "wall": ["--mode", "wall"],
    "wall-async": ["--mode", "wall", "--async"],
    "cpu": ["--mode", "cpu"],
    "cpu-async": ["--mode", "cpu", "--async"],
}
_live = []  # every process started here, ended by pid on exit


def per(cpu_s, n):
    """Microseconds of CPU per tick or sample (nan when there are none: Austin has no ticks)."""
    return 1e6 * cpu_s / n if n else float("nan")


def start_service(port):
    proc = demo_rps.start_service(port, yappi=False)
    _live.append(proc)
    return proc


def start_load(port, seconds):
    # Bounded in time (-t) and count (-n); -s: a stuck request times out.
    cmd = ["ab", "-q", "-k", "-c", "20", "-t", str(seconds), "-n", "200000", "-s", "10",
           "http://127.0.0.1:%d/chat?q=hi" % port]
    out = tempfile.TemporaryFile()
    proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    proc.out = out
    _live.append(proc)
    return proc


def load_rps(proc):
    proc.wait(timeout=300)
    proc.out.seek(0)
    for line in proc.out.read().decode(errors="replace").splitlines():
        if line.startswith("Requests per second"):
            return float(line.split()[3])
    return float("nan")


def record(pyprofd, master, mode, rate, seconds, wrap):
    cmd = list(wrap) + [pyprofd, "record", "--pid", str(master), "--subprocesses", "--rate", str(rate),
                        "--duration", str(seconds), "-o", os.path.join(tempfile.gettempdir(), "pyprofd-load.stats")]
    cmd += MODES[mode]
    err = tempfile.TemporaryFile()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, stdin=subprocess.DEVNULL)
    _live.append(proc)
    _, status, ru = os.wait4(proc.pid, 0)
    proc.returncode = status
    err.seek(0)
    text = err.read().decode(errors="replace")
    s = parse_summary(text)
    if s is None or status != 0:
        raise RuntimeError("pyprofd failed (%s): %s\n%s" % (status, " ".join(cmd), text[-2000:]))
    s["cpu_s"] = ru.ru_utime + ru.ru_stime
    s["sys_s"] = ru.ru_stime
    return s


AUSTIN_MODES = {"wall": [], "cpu": ["-s"]}  # -s (sleepless): idle samples dropped, austin's cpu mode


def record_austin(austin, master, mode, rate, seconds):
    """Austin (built from its sources; never Debian's 1.0.1) on the same tree: -C follows
    children. Samples from its 'Error rate : x/N' line; no ticks, so per sample only."""
    out = os.path.join(tempfile.gettempdir(), "pyprofd-load.austin")
    cmd = [austin, "-C", "-i", str(int(1e6 / rate)), "-x", str(int(round(seconds))), "-p", str(master), "-o", out]
    cmd += AUSTIN_MODES[mode]
    err = tempfile.TemporaryFile()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, stdin=subprocess.DEVNULL)
    _live.append(proc)
    _, status, ru = os.wait4(proc.pid, 0)
    proc.returncode = status
    err.seek(0)
    text = re.sub(r"\x1b\[[0-9;]*m", "", err.read().decode(errors="replace"))
    m = re.search(r"Error rate : (\d+)/(\d+)", text)
    if status != 0 or not m:
        raise RuntimeError("austin failed (%s): %s\n%s" % (status, " ".join(cmd), text[-2000:]))
    n = int(m.group(2))
    return dict(cpu_s=ru.ru_utime + ru.ru_stime, sys_s=ru.ru_stime, samples=n, ticks=0, invalid=int(m.group(1)),
                first_sample_ms=float("nan"), us_per_tick=float("nan"))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pyprofd", action="append", required=True, help="a pyprofd binary (repeat to compare builds)")
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--rate", type=int, default=100)
    ap.add_argument("--reps", type=int, default=1)
    ap.add_argument("--modes", default="wall,wall-async,cpu,cpu-async")
    ap.add_argument("--austin", help="an Austin 3.x binary built from its sources, run beside pyprofd (wall, cpu)")
    ap.add_argument("--wrap", default="", help="a command to run pyprofd under, e.g. 'strace -c -f -o out.txt'")
    a = ap.parse_args()
    modes = a.modes.split(",")
    for m in modes:
        if m not in MODES:
            sys.exit("load.py: unknown mode %r (one of %s)" % (m, ", ".join(MODES)))
    binaries = [os.path.abspath(p) for p in a.pyprofd]
    austin = os.path.abspath(a.austin) if a.austin else None
    for b in binaries + ([austin] if austin else []):
        if not os.access(b, os.X_OK):
            sys.exit("load.py: %s is not executable" % b)

    port = free_port()
    service = start_service(port)
    rows = []
    try:
        warm = start_load(port, 3)  # imports and first requests of both workers
        load_rps(warm)
        for rep in range(a.reps):
            for mode in modes:
                runs = binaries + ([austin] if austin and mode in AUSTIN_MODES else [])
                for b in runs:
                    load = start_load(port, int(a.seconds + 4))
                    time.sleep(1)  # the load is up before the profiler starts
                    if b == austin:
                        s = record_austin(b, service.pid, mode, a.rate, a.seconds)
                    else:
                        s = record(b, service.pid, mode, a.rate, a.seconds, shlex.split(a.wrap))
                    s["rps"] = load_rps(load)
                    s.update(binary=b, mode=mode, rep=rep)
                    rows.append(s)
                    print("%-10s %-40s cpu %.3f s  %6.1f us/tick %6.1f us/sample  samples %d ticks %d invalid %d "
                          "first %.1f ms  rps %.1f" % (mode, b, s["cpu_s"], per(s["cpu_s"], s["ticks"]),
                                                       per(s["cpu_s"], s["samples"]), s["samples"],
                                                       s["ticks"], s["invalid"], s["first_sample_ms"], s["rps"]),
                          flush=True)
    finally:
        for p in reversed(_live):
            stop(p)

    print()
    print("`python3 bench/load.py %s%s --seconds %g --rate %d --reps %d --modes %s`" % (
        " ".join("--pyprofd " + p for p in a.pyprofd), " --austin " + a.austin if a.austin else "", a.seconds,
        a.rate, a.reps, a.modes))
    print()
    print("| build | mode | whole-process CPU µs/tick | µs/sample | own loop µs/tick | samples | ticks | invalid "
          "| first sample ms | service req/s |")
    print("|---|---|---|---|---|---|---|---|---|---|")

    def md(xs, fmt):
        if len(xs) == 1:
            return fmt % xs[0]
        return (fmt + " [" + fmt + "–" + fmt + "]") % (statistics.median(xs), min(xs), max(xs))

    for b in binaries + ([austin] if austin else []):
        for mode in modes:
            rs = [r for r in rows if r["binary"] == b and r["mode"] == mode]
            if not rs:
                continue
            print("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
                os.path.relpath(b), mode,
                md([per(r["cpu_s"], r["ticks"]) for r in rs], "%.0f"),
                md([per(r["cpu_s"], r["samples"]) for r in rs], "%.1f"),
                md([r["us_per_tick"] for r in rs], "%.0f"),
                md([r["samples"] for r in rs], "%d"), md([r["ticks"] for r in rs], "%d"),
                md([r["invalid"] for r in rs], "%d"), md([r["first_sample_ms"] for r in rs], "%.1f"),
                md([r["rps"] for r in rs], "%.0f")))


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        for p in reversed(_live):
            stop(p)
        sys.exit(130)
