#!/usr/bin/env python3
"""pyprofd benchmark driver (issue 7, benchmark items 1, 2, 3, 5, 6).

usage: bench.py --build BUILD_DIR [--quick] [--only ITEMS] [--out DIR]

Every number is a ratio or a per-sample cost measured within this one run on
this machine; the machine is shared and noisy, so each measurement is repeated
and reported as median [min-max]. Every process this script starts is ended by
its PID (also on Ctrl-C), and every run is bounded in time.

Items (--only takes a comma-separated subset, e.g. --only 1,2):
  floor  cost of a bare timer wakeup (bench/tick_cost.c) at each rate used
  1      pyprofd CPU per sample at depths 1/10/50/200 on every interpreter
  2      highest sustained rate at depth 50
  3      target slowdown, profiler ON/OFF windows, free core and shared core
  5      Austin (Debian's 1.0.1) side by side
  6      RSS after 1 M samples, attach-to-first-sample latency
  perf   perf record -g and strace -c of pyprofd at depth 50 (where the time goes)
"""
import argparse
import glob
import json
import os
import platform
import re
import select
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TARGETS = os.path.join(HERE, "targets")
DEEP = os.path.join(TARGETS, "deep.py")
THROUGHPUT = os.path.join(TARGETS, "throughput.py")

# Every process started here, by PID, so an interrupted run leaves nothing behind.
_live = {}


def _cleanup(*_):
    for pid in list(_live):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    _live.clear()


def _on_signal(sig, frame):
    _cleanup()
    sys.exit(128 + sig)


def log(msg):
    print(msg, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- statistics

def med(xs):
    return statistics.median(xs) if xs else float("nan")


def spread(xs, fmt="%.1f"):
    """'median [min-max]' of xs."""
    if not xs:
        return "n/a"
    if len(xs) == 1:
        return fmt % xs[0]
    return (fmt + " [" + fmt + "–" + fmt + "]") % (med(xs), min(xs), max(xs))


# ---------------------------------------------------------------- processes

class Measured:
    """A finished child: exit status, output, wall time and its own rusage."""

    def __init__(self, **kw):
        self.__dict__.update(kw)

    @property
    def cpu_s(self):
        return self.utime + self.stime


def run_measured(cmd, timeout, stop_after=None, stop_signal=signal.SIGINT):
    """Runs cmd to completion and returns its rusage (os.wait4). After stop_after
    seconds it gets stop_signal (a profiler that has no --duration); after timeout
    seconds it is killed. Output goes to temporary files, never a blocking pipe."""
    out = tempfile.TemporaryFile()
    err = tempfile.TemporaryFile()
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
    _live[p.pid] = p
    timers = []
    if stop_after is not None:
        timers.append(threading.Timer(stop_after, lambda: _signal(p.pid, stop_signal)))
    timers.append(threading.Timer(timeout, lambda: _signal(p.pid, signal.SIGKILL)))
    for t in timers:
        t.daemon = True
        t.start()
    _, status, ru = os.wait4(p.pid, 0)
    t1 = time.monotonic()
    for t in timers:
        t.cancel()
    p.returncode = os.waitstatus_to_exitcode(status) if hasattr(os, "waitstatus_to_exitcode") else status
    _live.pop(p.pid, None)
    out.seek(0)
    err.seek(0)
    return Measured(cmd=cmd, rc=p.returncode, stdout=out.read().decode(errors="replace"),
                    stderr=err.read().decode(errors="replace"), t_start=t0, t_end=t1, wall=t1 - t0,
                    utime=ru.ru_utime, stime=ru.ru_stime, maxrss_kb=ru.ru_maxrss)


def _signal(pid, sig):
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


class Target:
    """A benchmark target (bench/targets/*.py) that prints 'ready' when in place.
    Extra stdout lines are collected by a reader thread (the throughput reports)."""

    def __init__(self, python, args, cpu=None, max_seconds=900):
        cmd = [python] + args
        if "--max-seconds" not in args and args[0] == DEEP:
            cmd += ["--max-seconds", str(max_seconds)]
        if cpu is not None:
            cmd = ["taskset", "-c", str(cpu)] + cmd  # taskset execs: the PID stays the target's
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     stdin=subprocess.DEVNULL, text=True, bufsize=1)
        self.pid = self.proc.pid
        _live[self.pid] = self.proc
        self.lines = []
        r, _, _ = select.select([self.proc.stdout], [], [], 60)
        first = self.proc.stdout.readline() if r else ""
        if not first.startswith("ready"):
            self.stop()
            raise RuntimeError("target %s did not start: %r %s" % (cmd, first, self.proc.stderr.read()[-2000:]))
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        time.sleep(0.2)  # let it settle into the steady state

    def _read(self):
        for line in self.proc.stdout:
            parts = line.split()
            if len(parts) == 3:
                self.lines.append((float(parts[0]), int(parts[1]), float(parts[2])))

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        _live.pop(self.pid, None)


# ---------------------------------------------------------------- interpreters

def interpreters():
    """(label, path, minor) of every installed supported interpreter."""
    out = []
    root = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
    for minor in range(8, 14):
        hits = sorted(glob.glob(os.path.join(root, "versions", "3.%d.*" % minor, "bin", "python3.%d" % minor)))
        if hits:
            out.append(("%s" % os.path.basename(os.path.dirname(os.path.dirname(hits[-1]))), hits[-1], minor))
    if os.path.exists("/usr/bin/python3.11"):
        out.append(("Debian 3.11", "/usr/bin/python3.11", 11))
    # Debian sid's static builds (tools/install-pythons.sh).
    for minor in range(13, 16):
        path = os.path.expanduser("~/.cache/pyprofd/pythons/3.%d/root/usr/bin/python3.%d" % (minor, minor))
        if os.access(path, os.X_OK):
            out.append(("sid3.%d" % minor, path, minor))
    return out


def pick(interps, label):
    for i in interps:
        if i[0] == label or i[0].startswith(label + "."):
            return i
    return None


# ---------------------------------------------------------------- pyprofd

SUMMARY = [
    ("recorded", re.compile(r"recorded ([\d.]+) s: (\d+) samples, (\d+) ticks at ([\d.]+) Hz \(requested ([\d.]+) Hz\), "
                            r"(\d+) missed ticks")),
    ("counts", re.compile(r"threads: (\d+); invalid samples: (\d+); errors: (\d+)")),
    ("cpu", re.compile(r"own CPU ([\d.]+) s \(([\d.]+) us per tick, ([\d.]+) us per sample\); "
                       r"(?:first sample after ([\d.]+) ms|no sample taken)")),
]


def parse_summary(text):
    s = {}
    for key, rx in SUMMARY:
        m = rx.search(text)
        if not m:
            return None
        g = m.groups()
        if key == "recorded":
            s.update(seconds=float(g[0]), samples=int(g[1]), ticks=int(g[2]), hz=float(g[3]),
                     requested=float(g[4]), missed=int(g[5]))
        elif key == "counts":
            s.update(threads=int(g[0]), invalid=int(g[1]), errors=int(g[2]))
        else:
            s.update(own_cpu_s=float(g[0]), us_per_tick=float(g[1]), us_per_sample=float(g[2]),
                     first_sample_ms=float(g[3]) if g[3] is not None else -1.0)
    return s


class Bench:
    def __init__(self, args):
        self.build = os.path.abspath(args.build)
        self.pyprofd = os.path.join(self.build, "pyprofd")
        self.quick = args.quick
        self.out = os.path.abspath(args.out or os.path.join(self.build, "bench-results"))
        os.makedirs(self.out, exist_ok=True)
        self.scratch = tempfile.mkdtemp(prefix="pyprofd-bench-")
        self.interps = interpreters()
        if args.interpreters:  # labels or label prefixes, comma-separated
            want = args.interpreters.split(",")
            self.interps = [i for i in self.interps if any(i[0] == w or i[0].startswith(w) for w in want)]
        self.results = {"quick": self.quick}
        self.md = []  # markdown tables, printed at the end
        # Run lengths: (seconds per measurement, repetitions).
        self.dur = 1.0 if self.quick else 3.0
        self.reps = 1 if self.quick else 3

    def record(self, pid, rate, duration, mode="wall", cpu=None, extra=(), wrap=()):
        cmd = list(wrap)
        if cpu is not None:
            cmd += ["taskset", "-c", str(cpu)]
        cmd += [self.pyprofd, "record", "--pid", str(pid), "--rate", str(rate), "--duration", str(duration),
                "--mode", mode, "-o", os.path.join(self.scratch, "out.stats")] + list(extra)
        m = run_measured(cmd, timeout=duration + 60)
        m.summary = parse_summary(m.stderr)
        if m.rc != 0 or m.summary is None:
            log("pyprofd failed (rc %s): %s\n%s" % (m.rc, " ".join(cmd), m.stderr[-2000:]))
        return m

    def table(self, title, command, header, rows, note=None):
        lines = ["### " + title, "", "`" + command + "`", ""]
        lines.append("| " + " | ".join(header) + " |")
        lines.append("|" + "---|" * len(header))
        for r in rows:
            lines.append("| " + " | ".join(str(c) for c in r) + " |")
        if note:
            lines += ["", note]
        text = "\n".join(lines) + "\n"
        self.md.append(text)
        print(text, flush=True)

    # ------------------------------------------------------------ floor
    def tick_cost(self, rate, seconds, slack_ns=None):
        exe = os.path.join(self.scratch, "tick_cost")
        if not os.path.exists(exe):
            subprocess.run(["cc", "-O2", "-o", exe, os.path.join(HERE, "tick_cost.c")], check=True)
        cmd = [exe, str(rate), str(seconds)] + ([str(slack_ns)] if slack_ns is not None else [])
        m = run_measured(cmd, timeout=seconds + 30)
        g = re.search(r"ticks (\d+) missed (\d+) wall_s ([\d.]+) cpu_s ([\d.]+) us_per_tick ([\d.]+)", m.stdout)
        if not g:
            raise RuntimeError("tick_cost failed: " + m.stdout + m.stderr)
        return {"ticks": int(g.group(1)), "missed": int(g.group(2)), "wall": float(g.group(3)),
                "cpu": float(g.group(4)), "us_per_tick": float(g.group(5))}

    def floor(self):
        """tick_cost at each rate, while a depth-50 target spins (the conditions of items 1 and 2)."""
        rates = [100, 1000, 2000, 5000, 10000, 20000]
        res = {}
        rows = []
        it = pick(self.interps, "3.11") or self.interps[0]
        t = Target(it[1], [DEEP, "50"])
        try:
            for rate, slack in [(r, None) for r in rates] + [(20000, 1)]:
                runs = [self.tick_cost(rate, self.dur, slack) for _ in range(self.reps)]
                us = [r["us_per_tick"] for r in runs]
                cpu = [100.0 * r["cpu"] / r["wall"] for r in runs]
                hz = [r["ticks"] / r["wall"] for r in runs]
                if slack is None:
                    res[rate] = {"us_per_tick": us, "cpu_pct": cpu, "hz": hz}
                else:
                    res["%d_slack%d" % (rate, slack)] = {"us_per_tick": us, "cpu_pct": cpu, "hz": hz}
                rows.append([rate, "default (50 µs)" if slack is None else "%d ns" % slack, spread(hz, "%.0f"),
                             spread(us), spread(cpu)])
        finally:
            t.stop()
        self.results["floor"] = res
        self.table("Floor: bare timer wakeup (bench/tick_cost.c)",
                   "tick_cost RATE %g [TIMERSLACK_NS]  (x%d; cc -O2 bench/tick_cost.c; while "
                   "bench/targets/deep.py 50 spins on %s)" % (self.dur, self.reps, it[0]),
                   ["rate (Hz)", "timer slack", "achieved Hz", "CPU µs per tick", "CPU % of one core"], rows,
                   "A process that does nothing but clock_nanosleep(TIMER_ABSTIME) at RATE: the CPU any "
                   "one-wakeup-per-tick sampler pays before reading a single byte. With the default 50 µs timer "
                   "slack a sleeping loop cannot go much past 10 kHz.")

    def floor_us(self, rate):
        f = self.results.get("floor", {}).get(rate)
        if f is None:
            f = {"us_per_tick": [self.tick_cost(rate, self.dur)["us_per_tick"]]}
            self.results.setdefault("floor", {})[rate] = f
        return med(f["us_per_tick"])

    # ------------------------------------------------------------ item 1
    def item1(self):
        depths = [1, 10, 50, 200]
        rate = 1000
        res = []
        rows = []
        for label, python, minor in self.interps:
            floors = []
            for depth in depths:
                modes = ["wall", "cpu"] if depth == 50 else ["wall"]
                t = Target(python, [DEEP, str(depth)])
                try:
                    if depth == 50:
                        # The floor of this interpreter's rows, measured beside the same spinning target.
                        floors = [self.tick_cost(rate, self.dur)["us_per_tick"] for _ in range(self.reps)]
                    for mode in modes:
                        runs = [self.record(t.pid, rate, self.dur, mode) for _ in range(self.reps)]
                        ok = [r.summary for r in runs if r.summary and r.summary["samples"] > 0]
                        res.append({"interpreter": label, "minor": minor, "depth": depth, "mode": mode,
                                    "summaries": ok, "goal_us": 10.0 if minor >= 11 else 25.0})
                        log("item1 %s depth %d %s: %s us/sample" % (label, depth, mode,
                                                                   spread([s["us_per_sample"] for s in ok])))
                finally:
                    t.stop()
            floor = med(floors)
            for r in res:
                if r["interpreter"] != label:
                    continue
                ok = r["summaries"]
                us = [s["us_per_sample"] for s in ok]
                per_tick = [s["us_per_tick"] for s in ok]
                kept = [100.0 * s["samples"] / max(1, s["ticks"]) for s in ok]
                net = [u - floor for u in per_tick]
                r.update(floor_us=floors, us_per_sample=us, us_per_tick=per_tick, net_us_per_tick=net)
                bad = sum(s["invalid"] + s["errors"] for s in ok)
                verdict = ""
                if r["depth"] == 50:
                    g = r["goal_us"]
                    verdict = "%s / %s (≤ %g)" % ("met" if med(us) <= g else "missed",
                                                  "met" if med(net) <= g else "missed", g)
                rows.append([label, r["depth"], r["mode"], spread([s["hz"] for s in ok], "%.0f"), spread(kept, "%.0f"),
                             spread(us), spread(per_tick), "%.1f" % floor, spread(net), bad, verdict])
        self.results["item1"] = res
        self.table("Item 1: pyprofd CPU per sample at 1 kHz",
                   "pyprofd record --pid PID --rate 1000 --duration %g --mode wall|cpu -o out.stats  "
                   "(target: bench/targets/deep.py DEPTH; x%d per row); floor: tick_cost 1000 %g (x%d per "
                   "interpreter, beside its depth-50 target)" % (self.dur, self.reps, self.dur, self.reps),
                   ["interpreter", "depth", "mode", "achieved Hz", "samples/ticks %", "total µs/sample",
                    "total µs/tick", "floor µs/tick", "minus floor µs/tick", "invalid+errors",
                    "goal at depth 50 (total / minus floor)"], rows,
                   "total = pyprofd's own CPU in its sampling loop (its summary line) / samples or / ticks; one "
                   "thread, so in wall mode every tick is one sample. floor = CPU per tick of the bare timer "
                   "wakeup (bench/tick_cost.c) measured next to the same target; minus floor = total per tick − "
                   "floor, i.e. what pyprofd itself adds to each wakeup. In cpu mode a tick whose thread is not "
                   "on a CPU gives no sample (samples/ticks < 100 %); the spinning target always is, so cpu mode "
                   "costs one extra pread of /proc/PID/task/TID/stat per tick.")

    # ------------------------------------------------------------ item 2
    def item2(self):
        rates = [1000, 2000, 5000, 10000, 20000]
        res = []
        rows = []
        chosen = [i for i in (pick(self.interps, "3.11"), pick(self.interps, "3.8")) if i]
        for label, python, minor in chosen:
            t = Target(python, [DEEP, "50"])
            try:
                for rate in rates:
                    runs = [self.record(t.pid, rate, self.dur, "wall") for _ in range(self.reps)]
                    ok = [r.summary for r in runs if r.summary]
                    hz = [s["hz"] for s in ok]
                    missed = [100.0 * s["missed"] / max(1, s["missed"] + s["ticks"]) for s in ok]
                    cpu = [100.0 * s["own_cpu_s"] / s["seconds"] for s in ok]
                    us = [s["us_per_sample"] for s in ok]
                    fl = self.results.get("floor", {}).get(rate, {})
                    floor_cpu = med(fl.get("cpu_pct", []))
                    floor_hz = med(fl.get("hz", []))
                    res.append({"interpreter": label, "rate": rate, "hz": hz, "floor_hz": floor_hz, "missed_pct": missed, "cpu_pct": cpu,
                                "us_per_sample": us, "floor_cpu_pct": floor_cpu})
                    sustained = med(hz) >= 0.95 * rate
                    verdict = ""
                    if rate == 10000:
                        verdict = "met" if sustained and med(cpu) < 15 else "missed"
                    rows.append([label, rate, spread(hz, "%.0f"), "%.0f" % floor_hz, spread(missed), spread(cpu),
                                 "%.1f" % floor_cpu, spread(us), verdict])
                    log("item2 %s %d Hz: %s Hz, %s %% CPU" % (label, rate, spread(hz, "%.0f"), spread(cpu)))
            finally:
                t.stop()
        self.results["item2"] = res
        self.table("Item 2: highest sustained rate at depth 50",
                   "pyprofd record --pid PID --rate RATE --duration %g --mode wall -o out.stats  "
                   "(target: bench/targets/deep.py 50; x%d per row)" % (self.dur, self.reps),
                   ["interpreter", "requested Hz", "achieved Hz", "floor achieved Hz (tick_cost)", "missed ticks %",
                    "pyprofd CPU % of one core",
                    "floor CPU % (tick_cost)", "µs/sample", "goal 10 kHz < 15 %"], rows,
                   "CPU % = own CPU in the sampling loop / recorded seconds. missed % = missed / (ticks + missed). "
                   "The floor columns are bench/tick_cost.c at the same rate beside a spinning target (table "
                   "'Floor'): a loop that only sleeps and wakes, under the same machine load.")

    # ------------------------------------------------------------ item 3
    def item3(self):
        python = "/usr/bin/python3.11" if os.path.exists("/usr/bin/python3.11") else self.interps[-1][1]
        configs = [(100, 1, "free core"), (1000, 1, "free core"), (100, 0, "target's core"),
                   (1000, 0, "target's core")]
        rounds = 1 if self.quick else 6
        on_s, off_s, trim = 2.0, 2.0, 0.2
        total = off_s + rounds * len(configs) * (on_s + off_s + 1.0) + 30
        t = Target(python, [THROUGHPUT, "--depth", "20", "--seconds", str(total)], cpu=0)
        windows = []  # (kind, config index or None, start, end)
        try:
            time.sleep(off_s)
            last_end = time.monotonic() - off_s + trim
            for r in range(rounds):
                for ci, (rate, cpu, _) in enumerate(configs):
                    a = time.monotonic()
                    windows.append(("off", None, last_end, a - trim))
                    m = self.record(t.pid, rate, on_s, "wall", cpu=cpu)
                    if m.summary is None:
                        raise RuntimeError("pyprofd failed in item 3")
                    windows.append(("on", ci, m.t_start + trim, m.t_end - trim))
                    last_end = m.t_end + trim
                    time.sleep(off_s)
                    if not t.alive():
                        raise RuntimeError("throughput target exited early")
            windows.append(("off", None, last_end, time.monotonic() - trim))
        finally:
            time.sleep(0.1)
            t.stop()
        pts = t.lines

        def at(x, col):
            for p0, p1 in zip(pts, pts[1:]):
                if p0[0] <= x <= p1[0]:
                    return p0[col] + (p1[col] - p0[col]) * (x - p0[0]) / (p1[0] - p0[0])
            raise RuntimeError("no throughput report around t=%.3f" % x)

        def rates_in(a, b):
            work = at(b, 1) - at(a, 1)
            return work / (b - a), work / max(1e-9, at(b, 2) - at(a, 2))  # per wall second, per CPU second

        measured = [(k, ci, rates_in(a, b)) for k, ci, a, b in windows]
        offs = [i for i, w in enumerate(measured) if w[0] == "off"]
        out = {}
        for col, name in ((0, "wall"), (1, "cpu")):
            per = {ci: [] for ci in range(len(configs))}
            for i, (k, ci, r) in enumerate(measured):
                if k == "on":
                    ref = (measured[i - 1][2][col] + measured[i + 1][2][col]) / 2
                    per[ci].append(100.0 * (1 - r[col] / ref))
            noise = []
            for j in range(1, len(offs) - 1):
                ref = (measured[offs[j - 1]][2][col] + measured[offs[j + 1]][2][col]) / 2
                noise.append(100.0 * (1 - measured[offs[j]][2][col] / ref))
            out[name] = (per, noise, med([abs(x) for x in noise]) if noise else float("nan"))
        rows = []
        res = []
        for ci, (rate, cpu, where) in enumerate(configs):
            row = ["%d Hz" % rate, "taskset -c %d (%s)" % (cpu, where), len(out["wall"][0][ci])]
            verdicts = []
            for name in ("wall", "cpu"):
                per, noise, noise_abs = out[name]
                s_ = per[ci]
                row.append(spread(s_, "%+.2f"))
                m = med(s_)
                if rate == 1000 and cpu == 0:
                    if m <= 1.0 and noise_abs <= 1.0:
                        v = "met"
                    elif m - noise_abs > 1.0:
                        v = "missed"
                    else:
                        v = "inconclusive (noise %.1f %%)" % noise_abs
                elif rate == 100:
                    v = "within noise" if abs(m) <= max(noise_abs, 0.5) else "above noise (%.1f %%)" % noise_abs
                else:
                    v = ""
                verdicts.append(v)
            row.append(" / ".join(v for v in verdicts if v))
            rows.append(row)
            res.append({"rate": rate, "pyprofd_cpu": cpu, "slowdown_wall_pct": out["wall"][0][ci],
                        "slowdown_cpu_pct": out["cpu"][0][ci]})
        self.results["item3"] = {"configs": res, "off_noise_wall_pct": out["wall"][1],
                                 "off_noise_cpu_pct": out["cpu"][1],
                                 "windows": [(k, ci, a, b, r) for (k, ci, a, b), (_, _, r) in zip(windows, measured)]}
        self.table("Item 3: target slowdown, pyprofd attached only in 2 s ON windows",
                   "taskset -c 0 python3.11 bench/targets/throughput.py --depth 20; per ON window: "
                   "taskset -c CPU pyprofd record --pid PID --rate RATE --duration 2 --mode wall -o out.stats",
                   ["rate", "pyprofd on", "ON windows", "slowdown % per wall second", "slowdown % per target CPU second",
                    "goal (wall / CPU)"], rows,
                   "Each ON window's throughput is compared with the mean of the OFF windows just before and after "
                   "it (%.1f s trimmed at every edge); the four configurations are interleaved, %d rounds. 'per wall "
                   "second' is what the user sees (includes CPU taken from the target by pyprofd or by anything "
                   "else on core 0); 'per target CPU second' divides by the target's own thread CPU time, so it "
                   "shows only interference (caches, TLB, memory) and is immune to other jobs on the machine. "
                   "Noise (an OFF window against its OFF neighbours): wall %s %% (median |x| %.2f %%), CPU %s %% "
                   "(median |x| %.2f %%)." % (trim, rounds, spread(out["wall"][1], "%+.2f"), out["wall"][2],
                                             spread(out["cpu"][1], "%+.2f"), out["cpu"][2]))

    # ------------------------------------------------------------ item 5
    def austin(self, pid, rate, duration):
        out = os.path.join(self.scratch, "austin.out")
        cmd = ["austin", "-i", str(int(1e6 / rate)), "-p", str(pid), "-o", out]
        m = run_measured(cmd, timeout=duration + 30, stop_after=duration)
        g = re.search(r"Error rate : (\d+)/(\d+)", m.stderr)
        samples = int(g.group(2)) if g else 0
        if not samples and os.path.exists(out):
            with open(out, errors="replace") as f:
                samples = sum(1 for line in f if line.startswith("Thread "))
        g = re.search(r"Sampling time \(min/avg/max\) : (\d+)/(\d+)/(\d+) us", m.stderr)
        m.samples = samples
        m.avg_sampling_us = int(g.group(2)) if g else None
        return m

    def item5(self):
        if not shutil.which("austin"):
            self.md.append("### Item 5: Austin not installed: skipped\n")
            return
        rate = 1000
        depths = [1, 10, 50, 200]
        res = []
        rows = []
        for label, python, minor in self.interps:
            if label.startswith("Debian"):
                continue
            t = Target(python, [DEEP, "10"])
            try:
                probe = self.austin(t.pid, rate, 1.0)
            finally:
                t.stop()
            if probe.samples == 0:
                log("item5: Austin gets no samples from %s: not supported" % label)
                rows.append([label, "–", "Austin 1.0.1 gets no samples (unsupported version)", "", "", "", "", ""])
                continue
            for depth in depths:
                t = Target(python, [DEEP, str(depth)])
                a_runs, p_runs = [], []
                try:
                    for _ in range(self.reps if depth == 50 else 1):
                        a_runs.append(self.austin(t.pid, rate, self.dur))
                        p_runs.append(self.record(t.pid, rate, self.dur, "wall"))
                finally:
                    t.stop()
                a_sps = [m.samples / m.wall for m in a_runs if m.samples]
                a_us = [1e6 * m.cpu_s / m.samples for m in a_runs if m.samples]
                p_ok = [m for m in p_runs if m.summary]
                p_sps = [m.summary["samples"] / m.wall for m in p_ok]
                p_us = [1e6 * m.cpu_s / m.summary["samples"] for m in p_ok]
                p_loop = [m.summary["us_per_sample"] for m in p_ok]
                a_self = [m.avg_sampling_us for m in a_runs if m.avg_sampling_us is not None]
                res.append({"interpreter": label, "depth": depth, "austin_sps": a_sps, "austin_us": a_us,
                            "austin_self_reported_us": a_self, "pyprofd_sps": p_sps, "pyprofd_us": p_us,
                            "pyprofd_loop_us": p_loop})
                ratio = med(a_us) / med(p_us) if p_us and a_us else float("nan")
                rows.append([label, depth, spread(a_sps, "%.0f"), spread(a_us), spread(a_self, "%.0f"),
                             spread(p_sps, "%.0f"), spread(p_us), spread(p_loop), "%.1f×" % ratio])
                log("item5 %s depth %d: austin %s us, pyprofd %s us" % (label, depth, spread(a_us), spread(p_us)))
        self.results["item5"] = res
        self.table("Item 5: Austin 1.0.1 (Debian) vs pyprofd, same target and depth, 1 kHz",
                   "austin -i 1000 -p PID -o austin.out (SIGINT after %g s) vs pyprofd record --pid PID --rate 1000 "
                   "--duration %g --mode wall; target bench/targets/deep.py DEPTH; x%d at depth 50, x1 otherwise"
                   % (self.dur, self.dur, self.reps),
                   ["interpreter", "depth", "Austin samples/s", "Austin CPU µs/sample", "Austin self-reported µs/sample",
                    "pyprofd samples/s", "pyprofd CPU µs/sample", "pyprofd loop-only µs/sample",
                    "Austin / pyprofd CPU"], rows,
                   "Both CPU columns are the whole process (user + system from wait4: start-up, attach, sampling, "
                   "output) / samples, samples/s = samples / process wall time; Austin's samples are the N of its "
                   "'Error rate : x/N' line. 'self-reported' is Austin's own average sampling time (wall µs). "
                   "Austin sleeps -i µs *after* each sample, so it cannot reach 1 kHz exactly.")

    # ------------------------------------------------------------ item 6
    def item6(self):
        rows = []
        res = {}
        target_py = pick(self.interps, "3.11") or self.interps[0]
        threads = 19  # + the main thread = 20 stacks per tick
        rate = 5000
        t = Target(target_py[1], [DEEP, "50", "--threads", str(threads)])
        try:
            base = self.record(t.pid, rate, 0.2, "wall")
            probe = self.record(t.pid, rate, 2.0, "wall")
            sps = probe.summary["samples"] / probe.summary["seconds"]
            want = 20000 if self.quick else 1050000
            duration = min(150.0, max(1.0, want / sps))
            log("item6: %.0f samples/s: recording %.1f s for %d samples" % (sps, duration, want))
            big = self.record(t.pid, rate, round(duration, 1), "wall")
        finally:
            t.stop()
        for name, m in (("0.2 s", base), ("2 s", probe), ("%.0f s" % big.summary["seconds"], big)):
            s = m.summary
            rows.append([name, s["samples"], "%.0f" % s["hz"], "%.1f" % s["us_per_sample"],
                         "%.0f" % (100.0 * s["own_cpu_s"] / s["seconds"]), "%.1f" % (m.maxrss_kb / 1024.0),
                         "met" if m is big and s["samples"] >= 1000000 and m.maxrss_kb / 1024 <= 50 else ""])
        res["rss"] = [{"summary": m.summary, "maxrss_kb": m.maxrss_kb}
                      for m in (base, probe, big)]
        self.table("Item 6a: pyprofd peak RSS (VmHWM) by samples taken",
                   "pyprofd record --pid PID --rate %d --duration D --mode wall -o out.stats  (target: "
                   "bench/targets/deep.py 50 --threads %d on %s: 20 stacks 50 deep per tick)"
                   % (rate, threads, target_py[0]),
                   ["duration", "samples", "achieved Hz", "µs/sample", "CPU % of one core", "peak RSS MB",
                    "goal ≤ 50 MB at ≥ 1 M samples"], rows,
                   "Peak RSS is ru_maxrss from wait4 (the same number as VmHWM and /usr/bin/time -v). With 20 "
                   "threads per tick the wakeup floor is shared by 20 samples (compare µs/sample with item 1).")

        rows = []
        lat = []
        n = 2 if self.quick else 5
        for label, python, minor in self.interps:
            t = Target(python, [DEEP, "50"])
            try:
                runs = [self.record(t.pid, 1000, 0.001, "wall") for _ in range(n)]
            finally:
                t.stop()
            ok = [m for m in runs if m.summary and m.summary["samples"] > 0]
            first = [m.summary["first_sample_ms"] for m in ok]
            walls = [1000 * m.wall for m in ok]
            cpu = [1000 * m.cpu_s for m in ok]
            lat.append({"interpreter": label, "first_sample_ms": first, "process_wall_ms": walls, "cpu_ms": cpu})
            rows.append([label, spread(first, "%.2f"), spread(walls), spread(cpu),
                         "met" if walls and med(walls) <= 100 else "missed"])
        res["latency"] = lat
        self.results["item6"] = res
        self.table("Item 6b: attach-to-first-sample latency (target bench/targets/deep.py 50)",
                   "pyprofd record --pid PID --rate 1000 --duration 0.001 --mode wall -o out.stats  (x%d)" % n,
                   ["interpreter", "summary 'first sample after' ms", "whole pyprofd process wall ms (upper bound)",
                    "pyprofd CPU ms (whole process)", "goal ≤ 100 ms"], rows,
                   "The whole-process wall time runs from exec to exit (start-up, attach, the one sample, writing "
                   "the file), so it bounds process start → first sample from above. The first row of each "
                   "interpreter may include a cold page cache for libpython's ELF symbols.")

    # ------------------------------------------------------------ perf
    def perf(self):
        rows = []
        notes = []
        res = []
        for want in ("3.11", "3.8"):
            it = pick(self.interps, want)
            if not it:
                continue
            label, python, minor = it
            t = Target(python, [DEEP, "50"])
            try:
                data = os.path.join(self.out, "perf-%s.data" % label.replace(" ", "_"))
                dur = 2.0 if self.quick else 5.0
                have_perf = shutil.which("perf") is not None
                # Kernel vs user comes from perf's split by object ([kernel.kallsyms] vs the rest):
                # rusage's utime/stime split is tick-sampled and useless for a process that runs
                # in 20 µs bursts (it reports 0 s system here).
                m = self.record(t.pid, 1000, dur, "wall")
                split = "unwrapped run: %.1f µs per sample" % m.summary["us_per_sample"]
                if have_perf:
                    pm = self.record(t.pid, 1000, dur, "wall", wrap=["perf", "record", "-q", "-g", "-o", data, "--"])
                    if pm.rc != 0:
                        log("perf record failed: " + pm.stderr[-1000:])
                top_sym = top_dso = ""
                if have_perf:
                    rep = subprocess.run(["perf", "report", "-i", data, "--stdio", "--no-children", "--sort", "sym",
                                          "-g", "none", "--percent-limit", "1.5"], capture_output=True, text=True,
                                         timeout=120).stdout
                    top_sym = "\n".join(l for l in rep.splitlines() if l.strip() and not l.startswith("#"))
                    rep = subprocess.run(["perf", "report", "-i", data, "--stdio", "--no-children", "--sort", "dso",
                                          "-g", "none"], capture_output=True, text=True, timeout=120).stdout
                    top_dso = "\n".join(l for l in rep.splitlines() if l.strip() and not l.startswith("#"))
                    k = re.search(r"([\d.]+)%\s+\[kernel\.kallsyms\]", rep)
                    if k:
                        split += "; perf: kernel %.0f %%, user %.0f %% of pyprofd's CPU samples" % (
                            float(k.group(1)), 100 - float(k.group(1)))
                    full = subprocess.run(["perf", "report", "-i", data, "--stdio", "--no-children", "--sort", "sym",
                                           "--percent-limit", "3"], capture_output=True, text=True, timeout=120).stdout
                    with open(data + ".report.txt", "w") as f:
                        f.write(full)
                strace_txt = ""
                for mode in (("wall", "cpu") if minor >= 11 else ("wall",)):
                    if not shutil.which("strace"):
                        break
                    sm = self.record(t.pid, 1000, dur, mode,
                                     wrap=["strace", "-c", "-o", os.path.join(self.scratch, "strace.txt")])
                    with open(os.path.join(self.scratch, "strace.txt")) as f:
                        raw = f.read()
                    ticks = sm.summary["ticks"] if sm.summary else 0
                    calls = []
                    for line in raw.splitlines():
                        f = line.split()
                        if len(f) >= 5 and f[-1] != "total" and f[3].isdigit() and int(f[3]) >= max(1, ticks // 20):
                            calls.append("%-20s %7d calls  %.2f per tick" % (f[-1], int(f[3]), int(f[3]) / max(1, ticks)))
                    strace_txt += "--mode %s: ticks %d, samples %d; syscalls made at least once per 20 ticks:\n%s\n" % (
                        mode, ticks, sm.summary["samples"] if sm.summary else 0, "\n".join(calls))
            finally:
                t.stop()
            res.append({"interpreter": label, "split": split, "top_sym": top_sym, "top_dso": top_dso,
                        "strace": strace_txt, "summary": m.summary})
            block = ["#### %s, depth 50, 1 kHz wall, %g s" % (label, dur), "",
                     "`perf record -g -o perf.data -- pyprofd record --pid PID --rate 1000 --duration %g --mode wall "
                     "-o out.stats`; `perf report --stdio --no-children --sort dso|sym -g none`" % dur, "",
                     split, "",
                     "```", "by object:", top_dso, "", "by symbol (self, ≥ 1.5 %):", top_sym, "```", ""]
            if strace_txt:
                block += ["`strace -c pyprofd record --pid PID --rate 1000 --duration %g --mode wall|cpu`" % dur, "",
                          "```", strace_txt.strip(), "```", ""]
            notes.append("\n".join(block))
        self.results["perf"] = res
        text = "### Where pyprofd's time goes (depth 50, 1 kHz)\n\n" + "\n".join(notes)
        self.md.append(text)
        print(text, flush=True)

    # ------------------------------------------------------------ main
    def machine(self):
        model = "?"
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
        load = open("/proc/loadavg").read().split()[:3]
        info = {"date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "nproc": os.cpu_count(), "cpu": model,
                "kernel": platform.release(), "loadavg_at_start": load,
                "interpreters": [i[0] for i in self.interps], "quick": self.quick}
        self.results["machine"] = info
        text = ("### Machine\n\n- date: %s\n- nproc: %d, CPU: %s, kernel %s\n- load average at start: %s\n"
                "- interpreters: %s\n- mode: %s\n" % (info["date"], info["nproc"], model, info["kernel"],
                                                      " ".join(load), ", ".join(info["interpreters"]),
                                                      "quick (smoke check)" if self.quick else "full"))
        self.md.append(text)
        print(text, flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", required=True)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--only", default="floor,1,2,3,5,6,perf")
    ap.add_argument("--out")
    ap.add_argument("--interpreters", help="only these interpreter labels (prefixes), e.g. 3.13,sid3.14")
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    b = Bench(args)
    if not os.access(b.pyprofd, os.X_OK):
        sys.exit("bench: no pyprofd in %s (build first)" % b.build)
    items = args.only.split(",")
    b.machine()
    try:
        for name, fn in (("floor", b.floor), ("1", b.item1), ("2", b.item2), ("3", b.item3), ("5", b.item5),
                         ("6", b.item6), ("perf", b.perf)):
            if name in items:
                t0 = time.monotonic()
                fn()
                log("bench: item %s took %.0f s" % (name, time.monotonic() - t0))
    finally:
        _cleanup()
        with open(os.path.join(b.out, "results.json"), "w") as f:
            json.dump(b.results, f, indent=1, default=str)
        with open(os.path.join(b.out, "tables.md"), "w") as f:
            f.write("\n".join(b.md))
        shutil.rmtree(b.scratch, ignore_errors=True)
        log("bench: results in %s/{tables.md,results.json}" % b.out)


if __name__ == "__main__":
    main()
