"""Item 4: the demo service's requests per second with no profiler, with pyprofd
recording the tree at 100 Hz (--subprocesses --async), and with yappi running
inside each worker (started by a gunicorn post_fork hook). The three run in turn,
ROUNDS times, on the same machine; reports median and spread of each and the
ratios to the unprofiled runs. Usage: python3 bench/demo_rps.py PYPROFD [ROUNDS] [SECONDS]"""
import os
import signal
import socket
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def workers_of(pid):
    kids = []
    for t in os.listdir("/proc/%d/task" % pid):
        with open("/proc/%d/task/%s/children" % (pid, t)) as f:
            kids += f.read().split()
    return kids


def start_service(port, yappi):
    cmd = ["/usr/bin/python3", "-m", "gunicorn", "-w", "2", "-k", "uvicorn.workers.UvicornWorker",
           "-b", "127.0.0.1:%d" % port, "--chdir", os.path.join(ROOT, "examples"), "--log-level", "warning"]
    if yappi:
        cmd += ["-c", os.path.join(ROOT, "bench", "yappi_post_fork.py")]
    proc = subprocess.Popen(cmd + ["app:app"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            if len(workers_of(proc.pid)) >= 2:
                return proc
        except OSError:
            pass
        time.sleep(0.1)
    stop(proc)
    raise RuntimeError("service did not start")


def stop(proc, sig=signal.SIGTERM):
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def ab_rps(port, seconds):
    """Requests per second of `ab -c 32` on the demo's /chat for seconds (bounded in count too)."""
    out = subprocess.run(["ab", "-q", "-k", "-c", "32", "-t", str(seconds), "-n", "1000000", "-s", "10",
                          "http://127.0.0.1:%d/chat" % port], capture_output=True, timeout=seconds + 120)
    for line in out.stdout.decode().splitlines():
        if line.startswith("Requests per second"):
            return float(line.split()[3])
    raise RuntimeError("ab printed no rate: %s" % out.stderr.decode())


def run_once(pyprofd, config, seconds):
    port = free_port()
    service = start_service(port, yappi=(config == "yappi"))
    recorder = None
    try:
        # Warm up both workers (imports, first requests) before measuring.
        subprocess.run(["ab", "-q", "-c", "8", "-n", "200", "http://127.0.0.1:%d/chat" % port],
                       capture_output=True, timeout=120)
        if config == "pyprofd":
            recorder = subprocess.Popen([pyprofd, "record", "--pid", str(service.pid), "--subprocesses", "--async",
                                         "--rate", "100", "-o", "/tmp/pyprofd-demo-rps.stats"],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return ab_rps(port, seconds)
    finally:
        if recorder:
            stop(recorder, signal.SIGINT)
        stop(service)


def main():
    pyprofd = os.path.abspath(sys.argv[1])
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    seconds = int(sys.argv[3]) if len(sys.argv) > 3 else 10
    results = {"none": [], "pyprofd": [], "yappi": []}
    for _ in range(rounds):
        for config in results:
            results[config].append(run_once(pyprofd, config, seconds))
    base = statistics.median(results["none"])
    print("| configuration | requests/s median [min–max] | vs no profiler |")
    print("|---|---|---|")
    for config, values in results.items():
        med = statistics.median(values)
        print("| %s | %.1f [%.1f–%.1f] | %+.1f %% |" % (config, med, min(values), max(values), 100 * (med / base - 1)))


if __name__ == "__main__":
    main()
