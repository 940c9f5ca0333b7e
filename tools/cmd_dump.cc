// `pyprofd dump`: every thread's Python stack, innermost frame first, as text or JSON.
#include <boost/program_options.hpp>
#include <iostream>

#include "exporters/dump_json.h"
#include "exporters/dump_text.h"
#include "profiler/snapshot.h"
#include "tools/cli.h"
#include "tools/native_options.h"
#include "tools/parse_options.h"

namespace po = boost::program_options;

namespace pyprofd::cli {

namespace {

struct DumpArgs {
  int pid = 0;
  bool json = false;
  SnapshotOptions snapshot;
  std::string native_pause;
};

po::options_description dump_options(DumpArgs* a) {
  po::options_description opts("pyprofd dump: print every thread's Python stack of a running process\n\n"
                               "usage: pyprofd dump --pid PID [--json] [--async] [--native [--native-all] [--native-pause never|auto|always]]\n\noptions");
  opts.add_options()("help,h", "show this help")("pid,p", po::value<int>(&a->pid)->required(), "process id to inspect")(
      "json", "print one JSON object instead of text")(
      "async,a", "also print the asyncio tasks: name, state, what each awaits, its coroutine stack");
  add_native_options(opts, &a->native_pause);
  return opts;
}

// Fills *a; returns -1 to go on, else the exit code (help shown, or a usage error).
int parse_dump_args(const std::vector<std::string>& args, DumpArgs* a) {
  po::options_description opts = dump_options(a);
  po::variables_map vm;
  if (int code = parse_options(args, opts, "dump", &vm,
                               "The target is never paused or written to (--native-pause always, or auto where perf events\n"
                               "are not allowed, stops one thread at a time briefly). Frames are innermost first.\n");
      code >= 0)
    return code;
  if (a->pid <= 0) return fail(kExitUsage, "dump: --pid must be a positive process id");
  a->json = vm.count("json") > 0;
  a->snapshot.async_tasks = vm.count("async") > 0;
  std::string error;
  if (!read_native_options(vm, a->native_pause, &a->snapshot.native, &error)) return fail(kExitUsage, "dump: " + error);
  return -1;
}

}  // namespace

int run_dump(const std::vector<std::string>& args) {
  DumpArgs a;
  int rc = parse_dump_args(args, &a);
  if (rc >= 0) return rc;
  ProcessSnapshot snapshot;
  AttachError err;
  if (!take_snapshot(a.pid, a.snapshot, &snapshot, &err)) return fail(kExitError, err.message);
  std::cout << (a.json ? dump_json(snapshot) : dump_text(snapshot));
  return kExitOk;
}

int fail(int code, const std::string& message) {
  std::cerr << "pyprofd: " << message << "\n";
  return code;
}

}  // namespace pyprofd::cli
