// Shared pieces of the pyprofd command line: exit codes and the subcommands.
#pragma once
#include <string>
#include <vector>

namespace pyprofd::cli {

constexpr int kExitOk = 0;
constexpr int kExitError = 1;  // attach failures, I/O errors
constexpr int kExitUsage = 2;  // bad flags

int run_dump(const std::vector<std::string>& args);
int run_record(const std::vector<std::string>& args);
int run_daemon(const std::vector<std::string>& args);

// Prints "pyprofd: <message>" on stderr and returns code.
int fail(int code, const std::string& message);

}  // namespace pyprofd::cli
