// `pyprofd record`: not yet built (issue 4).
#include "tools/cli.h"

namespace pyprofd::cli {
int run_record(const std::vector<std::string>&) { return fail(kExitUsage, "record: not implemented yet"); }
}  // namespace pyprofd::cli
