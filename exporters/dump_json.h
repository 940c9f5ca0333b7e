// `pyprofd dump --json`: one JSON object (indented by 2), ending with a newline.
#pragma once
#include <string>

#include "model/snapshot.h"

namespace pyprofd {

std::string dump_json(const ProcessSnapshot& snapshot);

}  // namespace pyprofd
