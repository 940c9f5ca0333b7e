// libFuzzer target (d): asyncio tasks (AsyncioReader read_tasks + build_stacks, two ticks)
// over a fuzzed snapshot; seeds recorded from asyncio targets resolve the registries and
// types, so mutations reach the task-set and await-chain readers.
#include "fuzz/fuzz_snapshot.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (auto proc = pyprofd::fuzz::process_from_input(data, size)) {
    pyprofd::fuzz::Reached r;
    pyprofd::fuzz::run_asyncio(*proc, &r);
  }
  return 0;
}
