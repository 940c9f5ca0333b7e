// `pyprofd dump`: every thread's Python stack, innermost frame first, as text or JSON.
#include <unistd.h>

#include <boost/program_options.hpp>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "profiler/asyncio_tasks.h"
#include "profiler/attach.h"
#include "profiler/thread_names.h"
#include "profiler/thread_reader.h"
#include "profiler/code_cache.h"
#include "tools/cli.h"

namespace po = boost::program_options;

namespace pyprofd::cli {

namespace {

struct FrameOut {
  std::string function, file;
  int line = 0, first_line = 0;
};

struct TaskOut {
  std::string name, state, awaiting;
  bool running = false;
  std::vector<FrameOut> frames;  // the task's await chain, innermost first
};

struct ThreadOut {
  uint64_t native_id = 0, thread_id = 0;
  std::string name;
  bool has_name = false, holds_gil = false, active = false;
  std::vector<FrameOut> frames;
};

// Running ('R') per the kernel's view of the task.
bool task_running(pid_t pid, uint64_t tid) {
  if (!tid) return false;
  std::ifstream in("/proc/" + std::to_string(pid) + "/task/" + std::to_string(tid) + "/stat");
  std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto close = s.rfind(')');
  return close != std::string::npos && close + 2 < s.size() && s[close + 2] == 'R';
}

std::string image_name(const std::string& path) {
  auto slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

}  // namespace

int run_dump(const std::vector<std::string>& args) {
  po::options_description opts("pyprofd dump: print every thread's Python stack of a running process\n\n"
                               "usage: pyprofd dump --pid PID [--json] [--async]\n\noptions");
  int pid = 0;
  opts.add_options()("help,h", "show this help")("pid,p", po::value<int>(&pid)->required(), "process id to inspect")(
      "json", "print one JSON object instead of text")(
      "async,a", "also print the asyncio tasks: name, state, what each awaits, its coroutine stack");
  po::variables_map vm;
  try {
    po::store(po::command_line_parser(args).options(opts).run(), vm);
    if (vm.count("help")) {
      std::cout << opts << "\nThe target is never paused or written to. Frames are innermost first.\n";
      return kExitOk;
    }
    po::notify(vm);
  } catch (const po::error& e) {
    return fail(kExitUsage, std::string("dump: ") + e.what());
  }
  if (pid <= 0) return fail(kExitUsage, "dump: --pid must be a positive process id");

  AttachError err;
  auto proc = attach_python(pid, &err);
  if (!proc) return fail(kExitError, err.message);

  ThreadReader reader(*proc);
  CodeCache codes(*proc->memory, proc->layout, proc->code_type);
  std::vector<ThreadSample> samples;
  // A stack can change under us; a few tries give a consistent one.
  bool ok = false;
  for (int attempt = 0; attempt < 5 && !ok; ++attempt) {
    if (!reader.sample(&samples, true)) continue;
    ok = true;
    for (const auto& t : samples) ok &= t.status == WalkStatus::kOk;
  }
  if (!ok && samples.empty()) {
    if (!process_exists(pid)) return fail(kExitError, "no such process: " + std::to_string(pid));
    return fail(kExitError, "cannot read the interpreter state of process " + std::to_string(pid));
  }
  auto names = read_thread_names(*proc->memory, proc->layout, reader.interpreter());
  auto frame_out = [&codes](uint64_t code_addr, int32_t offset) {
    CodeInfo* code = codes.get(code_addr);
    if (!code) return FrameOut{"<unknown>", "<unknown>", 0, 0};
    return FrameOut{code->qualname, code->file, code->line(offset), code->first_line};
  };

  std::vector<TaskOut> tasks;
  bool want_tasks = vm.count("async") > 0;
  if (want_tasks && reader.interpreter()) {
    AsyncioReader asyncio(*proc->memory, proc->layout, reader.interpreter());
    std::vector<TaskInfo> infos;
    asyncio.read_tasks(&infos);
    for (const auto& ti : infos) {
      TaskOut t;
      t.name = ti.name;
      t.state = ti.state == TaskState::kPending ? (ti.running ? "running" : "pending")
                                                 : (ti.state == TaskState::kDone ? "done" : "cancelled");
      t.running = ti.running;
      t.awaiting = ti.awaiting;
      for (const auto& f : ti.chain) t.frames.push_back(frame_out(f.code, f.byte_offset));
      tasks.push_back(std::move(t));
    }
  }

  std::vector<ThreadOut> threads;
  for (const auto& t : samples) {
    ThreadOut out;
    out.native_id = t.ts.native_id;
    out.thread_id = t.ts.thread_id;
    out.holds_gil = t.holds_gil;
    out.active = task_running(pid, t.ts.native_id);
    auto it = names.find(t.ts.thread_id);
    if (it != names.end()) {
      out.name = it->second;
      out.has_name = true;
    }
    for (const auto& f : t.frames) out.frames.push_back(frame_out(f.code, f.byte_offset));
    threads.push_back(std::move(out));
  }

  if (vm.count("json")) {
    nlohmann::json j;
    j["pid"] = pid;
    j["python_version"] = proc->version;
    j["executable"] = proc->command_line;
    j["image"] = proc->image_path;
    j["threads"] = nlohmann::json::array();
    for (const auto& t : threads) {
      nlohmann::json jt;
      jt["native_thread_id"] = t.native_id ? nlohmann::json(t.native_id) : nlohmann::json(nullptr);
      jt["thread_id"] = t.thread_id;
      jt["name"] = t.has_name ? nlohmann::json(t.name) : nlohmann::json(nullptr);
      jt["holds_gil"] = t.holds_gil;
      jt["active"] = t.active;
      jt["frames"] = nlohmann::json::array();
      for (const auto& f : t.frames)
        jt["frames"].push_back({{"function", f.function}, {"file", f.file}, {"line", f.line}, {"first_line", f.first_line}});
      j["threads"].push_back(jt);
    }
    if (want_tasks) {
      j["tasks"] = nlohmann::json::array();
      for (const auto& t : tasks) {
        nlohmann::json jt{{"name", t.name}, {"state", t.state}, {"running", t.running},
                          {"awaiting", t.awaiting.empty() ? nlohmann::json(nullptr) : nlohmann::json(t.awaiting)}};
        jt["frames"] = nlohmann::json::array();
        for (const auto& f : t.frames)
          jt["frames"].push_back({{"function", f.function}, {"file", f.file}, {"line", f.line}, {"first_line", f.first_line}});
        j["tasks"].push_back(jt);
      }
    }
    std::cout << j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
    return kExitOk;
  }

  std::cout << "Process " << pid << ": " << proc->command_line << "\n";
  std::cout << "Python v" << proc->version << " (" << image_name(proc->image_path) << ")\n";
  for (const auto& t : threads) {
    std::string state = t.active ? (t.holds_gil ? "active+gil" : "active") : (t.holds_gil ? "idle+gil" : "idle");
    std::ostringstream id;
    if (t.native_id) id << t.native_id; else id << "0x" << std::hex << t.thread_id;
    std::cout << "\nThread " << id.str() << " (" << state << ")";
    if (t.has_name) std::cout << ": \"" << t.name << "\"";
    std::cout << "\n";
    for (const auto& f : t.frames) std::cout << "    " << f.function << " (" << f.file << ":" << f.line << ")\n";
  }
  if (want_tasks) {
    std::cout << "\nasyncio tasks: " << tasks.size() << "\n";
    for (const auto& t : tasks) {
      std::cout << "\nTask \"" << t.name << "\" (" << t.state << ")";
      if (!t.awaiting.empty()) std::cout << " awaiting " << t.awaiting;
      std::cout << "\n";
      for (const auto& f : t.frames) std::cout << "    " << f.function << " (" << f.file << ":" << f.line << ")\n";
    }
  }
  return kExitOk;
}

int fail(int code, const std::string& message) {
  std::cerr << "pyprofd: " << message << "\n";
  return code;
}

}  // namespace pyprofd::cli
