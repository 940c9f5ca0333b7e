#include "tools/parse_options.h"

#include <iostream>

#include "tools/cli.h"

namespace po = boost::program_options;

namespace pyprofd::cli {

int parse_options(const std::vector<std::string>& args, const po::options_description& opts,
                  const std::string& command, po::variables_map* vm, const std::string& help_tail) {
  try {
    po::store(po::command_line_parser(args).options(opts).run(), *vm);
    if (vm->count("help")) {
      std::cout << opts << "\n" << help_tail;
      return kExitOk;
    }
    po::notify(*vm);
  } catch (const po::error& e) {
    return fail(kExitUsage, command + ": " + e.what());
  }
  return -1;
}

}  // namespace pyprofd::cli
