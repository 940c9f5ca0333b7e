// pyprofd: an out-of-process sampling profiler for CPython.
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <cstring>
#include <iostream>
#include <string>
#include <vector>

#include "tools/cli.h"

namespace {

const char* kUsage =
    "usage: pyprofd [-v|--verbose] <command> [options]\n"
    "\n"
    "commands:\n"
    "  dump     print every thread's Python stack of a running process\n"
    "  record   sample a process (tree) and write a profile\n"
    "  daemon   profile processes continuously: rolling windows, HTTP endpoints\n"
    "\n"
    "`pyprofd <command> --help` describes each command.\n";

}  // namespace

int main(int argc, char** argv) {
  using namespace pyprofd::cli;
  // Log lines go to stderr: stdout carries what a command prints (dump --json, record's table).
  spdlog::set_default_logger(spdlog::stderr_color_mt("pyprofd"));
  spdlog::set_level(spdlog::level::warn);
  spdlog::set_pattern("pyprofd: %l: %v");
  std::vector<std::string> args(argv + 1, argv + argc);
  // Global flags come before the command.
  while (!args.empty() && (args[0] == "-v" || args[0] == "--verbose")) {
    spdlog::set_level(spdlog::get_level() == spdlog::level::warn ? spdlog::level::info : spdlog::level::debug);
    args.erase(args.begin());
  }
  if (args.empty()) {
    std::cerr << kUsage;
    return kExitUsage;
  }
  if (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
    std::cout << kUsage;
    return kExitOk;
  }
  std::string command = args[0];
  args.erase(args.begin());
  // -v may also follow the command.
  for (auto it = args.begin(); it != args.end();) {
    if (*it == "--") break;
    if (*it == "-v" || *it == "--verbose") {
      spdlog::set_level(spdlog::get_level() == spdlog::level::warn ? spdlog::level::info : spdlog::level::debug);
      it = args.erase(it);
    } else {
      ++it;
    }
  }
  if (command == "dump") return run_dump(args);
  if (command == "record") return run_record(args);
  if (command == "daemon") return run_daemon(args);
  return fail(kExitUsage, "unknown command '" + command + "' (try: pyprofd --help)");
}
