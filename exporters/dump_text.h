// `pyprofd dump`'s text: the process, then each thread's stack (and each asyncio task's).
#pragma once
#include <string>

#include "model/snapshot.h"

namespace pyprofd {

std::string dump_text(const ProcessSnapshot& snapshot);

}  // namespace pyprofd
