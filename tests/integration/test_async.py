"""`--async`: asyncio tasks profiled as written (time shares: test_async_ratio.py):
tasks awaiting tasks nest; 1,000 tasks; a task set that mutates while sampled; a FastAPI endpoint's
CPU work under its coroutine chain; `dump --async`; each pending task on the thread that runs its
loop (a loop in a worker thread, one never run), in `dump` and in speedscope's per-thread profiles;
children of asyncio.wait, as_completed, run_in_executor, TaskGroup, asyncio.timeout and anyio task groups under their parent."""
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import unittest
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

CONFIG = {}
SCRIPT = os.path.join(common.TARGETS, "async_target.py")
LOOPS = os.path.join(common.TARGETS, "loops_target.py")
LINKS = os.path.join(common.TARGETS, "links_target.py")
DIST_PACKAGES = "/usr/lib/python3/dist-packages"


def task_keys(stats):
    return {k for k in stats if k[2].startswith("<task ")}


class AsyncTest(unittest.TestCase):
    config = CONFIG

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self.tmp.cleanup)

    def launch(self, *args, mode="wall", target_args=()):
        return common.record_launched(self, SCRIPT, "--async", "--mode", mode, *args, target_args=target_args)

    def test_tasks_awaiting_tasks_nest(self):
        stats, out, err = self.launch(target_args=("nested", "2"))
        def callers(name):
            return {k[2] for k in common.by_name(stats, name)["callers"]}
        # task_c runs on the loop's thread: its samples are stitched under its task. A tick
        # whose task list was read just as the loop switched tasks keeps the plain thread
        # stack (Handle._run -> task_c), so allow that rarely, never as the rule.
        c = common.by_name(stats, "task_c")
        under_task = sum(v[0] for k, v in c["callers"].items() if k[2] == "<task task-C>")
        self.assertGreaterEqual(under_task, 0.95 * c["nc"], c["callers"])
        self.assertEqual(callers("<task task-C>"), {"task_b"})
        self.assertEqual(callers("task_b"), {"<task task-B>"})
        self.assertEqual(callers("<task task-B>"), {"task_a"})
        self.assertEqual(callers("task_a"), {"<task task-A>"})
        self.assertIn("leaf_work", {k[2] for k in stats})

    def test_thousand_tasks(self):
        stats, out, err = self.launch("--rate", "50", target_args=("many", "5"))
        names = {k[2] for k in task_keys(stats)}
        missing = [i for i in range(1000) if "<task sleeper-%d>" % i not in names]
        self.assertEqual(missing, [], err)
        print(re.search(r"own CPU.*", err).group(0))

    def test_task_set_mutating(self):
        stats, out, err = self.launch("--rate", "500", target_args=("churn", "3"))
        self.assertIn("short_lived", {k[2] for k in stats})
        self.assertRegex(err, r"invalid samples: \d+")

    def test_dump_async(self):
        with common.Target(CONFIG["python"], SCRIPT, "nested", "30") as t:
            t.wait_ready()
            for _ in range(50):  # the tasks appear right after start: poll, bounded
                res = common.run_pyprofd(CONFIG["pyprofd"], "dump", "--pid", str(t.pid), "--async", "--json")
                self.assertEqual(res.returncode, 0, res.stderr)
                tasks = {x["name"]: x for x in json.loads(res.stdout)["tasks"]}
                if {"task-A", "task-B", "task-C"} <= set(tasks):
                    break
            self.assertEqual(tasks["task-A"]["awaiting"], "task-B")
            self.assertEqual(tasks["task-B"]["awaiting"], "task-C")
            self.assertEqual(tasks["task-A"]["state"], "pending")
            # A finished task the main coroutine still holds: listed on every version (3.14+
            # finds it through that coroutine's frame: its task lists drop finished tasks).
            self.assertEqual(tasks["task-done"]["state"], "done")
            self.assertEqual(tasks["task-done"]["frames"], [])
            self.assertIn("task_a", [f["function"] for f in tasks["task-A"]["frames"]])
            text = common.run_pyprofd(CONFIG["pyprofd"], "dump", "--pid", str(t.pid), "--async").stdout.decode()
            self.assertIn("task-C", text)
            if self.minor() >= 14:  # the task offsets came from the target's own .AsyncioDebug section
                res = common.run_pyprofd(CONFIG["pyprofd"], "-v", "-v", "dump", "--pid", str(t.pid), "--async")
                log = res.stderr.decode()  # log lines go to stderr, never into dump's output
                m = re.search(r"asyncio: offsets from \.AsyncioDebug in (\S+)", log)
                self.assertIsNotNone(m, log)
                self.assertRegex(os.path.basename(m.group(1)),
                                 r"^_asyncio\.cpython-314" if self.minor() == 14 else r"^(python|libpython)3\.15")

    def test_tasks_on_their_loops_thread_in_dump(self):
        with common.Target(CONFIG["python"], LOOPS, "60") as t:
            ids = json.loads(t.wait_ready())
            res = common.run_pyprofd(CONFIG["pyprofd"], "dump", "--pid", str(t.pid), "--async", "--json")
            self.assertEqual(res.returncode, 0, res.stderr)
            tasks = {x["name"]: x for x in json.loads(res.stdout)["tasks"]}
            text = common.run_pyprofd(CONFIG["pyprofd"], "dump", "--pid", str(t.pid), "--async").stdout.decode()
        self.assertEqual(ids["main"], t.pid)
        want = {"worker-%d" % i: ids["worker"] for i in range(200)}
        want.update({"main-%d" % i: ids["main"] for i in range(10)})
        want["orphan"] = None
        self.assertEqual({n: tasks[n]["thread"] for n in want if n in tasks}, want)
        self.assertEqual(tasks["?"]["thread"], ids["main"])  # the task named "\x00\x01\x02"
        self.assertNotIn("\x00", res.stdout.decode())
        self.assertIn('Tasks on thread %d "loop-thread": 201 tasks' % ids["worker"], text)  # + asyncio.run's task
        self.assertIn("Tasks whose loop is not running: 1 task", text)

    def test_tasks_on_their_loops_thread_in_speedscope(self):
        with common.Target(CONFIG["python"], LOOPS, "60") as t:
            ids = json.loads(t.wait_ready())
            path = os.path.join(self.tmp.name, "p.speedscope.json")
            res = common.run_pyprofd(CONFIG["pyprofd"], "record", "--async", "--mode", "wall", "--pid", str(t.pid), "--duration", "1",
                                     "--rate", "20", "-o", path)
        self.assertEqual(res.returncode, 0, res.stderr)
        with open(path) as f:
            doc = json.load(f)
        frames = [fr["name"] for fr in doc["shared"]["frames"]]
        tasks_of = {}
        for prof in doc["profiles"]:
            names = {frames[i] for stack in prof["samples"] for i in stack}
            tasks_of[prof["name"]] = {n[len("<task "):-1] for n in names if n.startswith("<task ")}
        self.assertEqual(len(tasks_of), len(doc["profiles"]), "one profile per thread")
        worker = [n for n in tasks_of if n.endswith("(tid %d)" % ids["worker"])]
        main = [n for n in tasks_of if n.endswith("(tid %d)" % ids["main"])]
        orphan = [n for n in tasks_of if n.endswith("tasks whose loop is not running")]
        self.assertEqual((len(worker), len(main), len(orphan)), (1, 1, 1), sorted(tasks_of))
        self.assertIn("loop-thread", worker[0])
        self.assertGreaterEqual(tasks_of[worker[0]], {"worker-%d" % i for i in range(200)})
        self.assertGreaterEqual(tasks_of[main[0]], {"main-%d" % i for i in range(10)})
        self.assertFalse({n for n in tasks_of[main[0]] if n.startswith("worker-")})
        self.assertEqual(tasks_of[orphan[0]], {"orphan"})
        self.assertIn("?", tasks_of[main[0]])
        self.assertRegex(res.stderr.decode(), r"\d+ task names could not be read cleanly \(shown as <task \?>\)")
        weights = [sum(p["weights"]) for p in doc["profiles"]]
        self.assertEqual(weights, sorted(weights, reverse=True), "busiest profile first")
        self.assertEqual(doc["activeProfileIndex"], 0)

    def links_env(self):
        """Debian's anyio on the path where it imports (the target then adds an anyio group)."""
        env = dict(os.environ, PYTHONPATH=DIST_PACKAGES)
        probe = subprocess.run([CONFIG["python"], "-c", "import anyio"], env=env, capture_output=True)
        return env, probe.returncode == 0

    def minor(self):
        out = subprocess.run([CONFIG["python"], "-c", "import sys; print(sys.version_info[1])"], capture_output=True)
        return int(out.stdout)

    def expected_links(self, has_anyio):
        """Parent -> children, as the target builds them on this version."""
        want = {"wait-parent": {"wait-0", "wait-1"}, "ac-parent": {"ac-0", "ac-1"}}
        if self.minor() >= 11:
            want.update({"tg-parent": {"tg-a", "tg-b"}, "tg-a": {"tg-shared"}, "tg-b": {"tg-shared"},
                         "to-parent": {"to-child"}})
        if has_anyio:
            want["anyio-parent"] = {"anyio-a", "anyio-b"}
        return want

    def test_await_links_in_dump(self):
        env, has_anyio = self.links_env()
        with common.Target(CONFIG["python"], LINKS, "60", env=env) as t:
            t.wait_ready()
            res = common.run_pyprofd(CONFIG["pyprofd"], "dump", "--pid", str(t.pid), "--async", "--json")
        self.assertEqual(res.returncode, 0, res.stderr)
        tasks = {x["name"]: x for x in json.loads(res.stdout)["tasks"]}
        for parent, children in self.expected_links(has_anyio).items():
            self.assertEqual(set(tasks[parent]["awaits"]), children, parent)
            for c in children:
                self.assertIn(parent, tasks[c]["awaited_by"], c)
        if self.minor() >= 11:
            self.assertEqual(set(tasks["tg-shared"]["awaited_by"]), {"tg-a", "tg-b"})
            frames = [f["function"] for f in tasks["tg-parent"]["frames"]]
            self.assertIn("TaskGroup.__aexit__", frames)
            self.assertEqual(frames[frames.index("TaskGroup.__aexit__"):], ["TaskGroup.__aexit__", "tg_parent"])

    def record_links(self, mode, seconds, rate, spin=False):
        """`record --async` of the links target: its pstats and a callers(name) lookup over every
        function of that name (asyncio's and anyio's TaskGroup.__aexit__), and whether anyio runs."""
        env, has_anyio = self.links_env()
        if spin:
            env["LINKS_SPIN"] = "1"
        path = os.path.join(self.tmp.name, "links-%s.stats" % mode)
        with common.Target(CONFIG["python"], LINKS, "60", env=env) as t:
            t.wait_ready()
            res = common.run_pyprofd(CONFIG["pyprofd"], "record", "--async", "--mode", mode, "--pid", str(t.pid),
                                     "--duration", str(seconds), "--rate", str(rate), "-o", path)
        self.assertEqual(res.returncode, 0, res.stderr)
        _, stats = common.read_pstats(path, CONFIG["python"])

        def callers(name):
            return {k[2] for key, v in stats.items() if key[2] == name for k in v["callers"]}
        return stats, callers, has_anyio

    def test_await_links_in_record(self):
        stats, callers, has_anyio = self.record_links("wall", 1, 20)
        # Each child task sits under its parent's coroutine frames, not at the root.
        self.assertEqual(callers("<task wait-0>"), {"_wait"})
        self.assertIn("wait_parent", callers("wait"))
        self.assertEqual(callers("wait_parent"), {"<task wait-parent>"})
        self.assertEqual(callers("<task ac-0>"), {"Queue.get" if self.minor() >= 11 else "get"})
        self.assertIn("ac_parent", callers("_wait_for_one") | callers("as_completed.<locals>._wait_for_one") |
                      callers("_AsCompletedIterator._wait_for_one"))
        # run_in_executor: the executor thread's stack sits under the awaiting task.
        run = "_WorkItem.run" if self.minor() >= 11 else "run"
        self.assertTrue(callers("blocking") <= {run, "WorkerContext.run"}, callers("blocking"))  # 3.14+: a context
        self.assertIn("ex_parent", callers(run))
        self.assertEqual(callers("ex_parent"), {"<task ex-parent>"})
        if self.minor() >= 11:
            for child in ("tg-a", "tg-b"):  # newer versions wait in a helper, TaskGroup._aexit
                self.assertTrue(callers("<task %s>" % child) <= {"TaskGroup.__aexit__", "TaskGroup._aexit"}, child)
            self.assertEqual(callers("TaskGroup.__aexit__") - {"anyio_parent"}, {"tg_parent"})
            # tg-shared is awaited by both: under each, its time split between them.
            self.assertEqual(callers("<task tg-shared>"), {"waits_on"})
            self.assertEqual(callers("waits_on"), {"<task tg-a>", "<task tg-b>"})
            split = common.by_name(stats, "<task tg-shared>")["ct"] / common.by_name(stats, "<task wait-0>")["ct"]
            self.assertAlmostEqual(split, 1.0, delta=0.2, msg="tg-shared's time, split in two, adds up to one task's")
            self.assertEqual(callers("<task to-child>"), {"to_parent"})
        if has_anyio:  # anyio 3's group waits with asyncio.wait in its __aexit__
            for child in ("anyio-a", "anyio-b"):
                self.assertEqual(callers("<task %s>" % child), {"_wait"}, child)
            aexit = "TaskGroup.__aexit__" if self.minor() >= 11 else "__aexit__"  # co_qualname is 3.11+
            self.assertIn(aexit, callers("wait"))
            self.assertIn("anyio_parent", callers(aexit))

    def test_await_links_in_cpu_mode(self):
        """cpu mode reads only the running task and the tasks awaiting it: each busy child's
        CPU still sits under its parent's coroutine frames, through every kind of link."""
        stats, callers, has_anyio = self.record_links("cpu", 3, 100, spin=True)
        # Every spinning task ran under its own name; a tick read as the loop switched tasks
        # keeps the plain thread stack (Handle._run -> leaf): not the rule, even in a slow
        # (sanitized) build whose reads span more switches.
        leaf = common.by_name(stats, "leaf")["callers"]
        tasks = {k[2] for k in leaf if k[2].startswith("<task ")}
        self.assertEqual(tasks, {"<task %s>" % n for n in self.spinning()})
        under_task = sum(v[0] for k, v in leaf.items() if k[2].startswith("<task ") or k[2].endswith("child"))
        self.assertGreaterEqual(under_task, 0.75 * sum(v[0] for v in leaf.values()), leaf)
        self.assertEqual(callers("<task wait-0>"), {"_wait"})
        self.assertEqual(callers("wait_parent"), {"<task wait-parent>"})
        self.assertEqual(callers("<task ac-0>"), {"Queue.get" if self.minor() >= 11 else "get"})
        if self.minor() >= 11:
            for child in ("tg-a", "tg-b"):
                self.assertTrue(callers("<task %s>" % child) <= {"TaskGroup.__aexit__", "TaskGroup._aexit"}, child)
            self.assertEqual(callers("TaskGroup.__aexit__") - {"anyio_parent"}, {"tg_parent"})
            self.assertEqual(callers("<task tg-shared>"), {"waits_on"})
            self.assertEqual(callers("waits_on"), {"<task tg-a>", "<task tg-b>"})
            self.assertEqual(callers("<task to-child>"), {"to_parent"})
        if has_anyio:
            for child in ("anyio-a", "anyio-b"):
                self.assertEqual(callers("<task %s>" % child), {"_wait"}, child)

    def spinning(self):
        """The tasks whose own coroutine runs leaf() in the target."""
        names = {"wait-0", "wait-1", "ac-0", "ac-1"}
        if self.minor() >= 11:
            names |= {"tg-shared", "to-child"}
        return names

    def test_fastapi_endpoint(self):
        env = dict(os.environ, PYTHONPATH=DIST_PACKAGES)
        probe = subprocess.run([CONFIG["python"], "-c", "import fastapi, uvicorn"], env=env, capture_output=True)
        if probe.returncode != 0:
            self.skipTest("Debian's FastAPI/uvicorn do not import on %s: %s" %
                          (CONFIG["name"], probe.stderr.decode().strip().splitlines()[-1]))
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        with common.Target(CONFIG["python"], os.path.join(common.TARGETS, "fastapi_app.py"), str(port), env=env) as t:
            t.wait_ready()
            stop = threading.Event()

            def load():
                while not stop.is_set():
                    urllib.request.urlopen("http://127.0.0.1:%d/work" % port, timeout=10).read()
            clients = [threading.Thread(target=load) for _ in range(2)]
            for c in clients:
                c.start()
            path = os.path.join(self.tmp.name, "api.stats")
            res = common.run_pyprofd(CONFIG["pyprofd"], "record", "--async", "--pid", str(t.pid), "--duration", "3",
                                     "-o", path)
            stop.set()
            for c in clients:
                c.join()
        self.assertEqual(res.returncode, 0, res.stderr)
        _, stats = common.read_pstats(path, CONFIG["python"])
        crunch = common.by_name(stats, "crunch")
        self.assertEqual({k[2] for k in crunch["callers"]}, {"step_three"})
        chain = [("step_three", "step_two"), ("step_two", "step_one"), ("step_one", "work_endpoint")]
        for callee, caller in chain:
            self.assertIn(caller, {k[2] for k in common.by_name(stats, callee)["callers"]})
        endpoint_callers = {k[2] for k in common.by_name(stats, "work_endpoint")["callers"]}
        self.assertTrue(endpoint_callers, "work_endpoint has callers")
        self.assertNotIn("_run_once", endpoint_callers, "the endpoint is under its task, not the loop")
        # Most of the CPU is crunch's, under the endpoint.
        total = sum(v["tt"] for v in stats.values())
        self.assertGreater(crunch["tt"], 0.3 * total)


if __name__ == "__main__":
    common.main(globals(), not_yet=common.ASYNC_NOT_YET)
