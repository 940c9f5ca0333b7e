// The one way the subcommands read their flags: Boost.Program_options with --help and
// one clear usage line on a bad flag.
#pragma once
#include <boost/program_options.hpp>
#include <string>
#include <vector>

namespace pyprofd::cli {

// Parses args against opts into *vm. Returns -1 to go on, kExitOk after printing the
// help (opts, then help_tail), or kExitUsage after "pyprofd: COMMAND: <error>".
int parse_options(const std::vector<std::string>& args, const boost::program_options::options_description& opts,
                  const std::string& command, boost::program_options::variables_map* vm,
                  const std::string& help_tail = "");

}  // namespace pyprofd::cli
