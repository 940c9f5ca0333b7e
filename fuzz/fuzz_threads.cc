// libFuzzer target (a): thread listing and frame walking (ThreadReader, StackWalker) for
// each builtin layout 3.8-3.13, over a fuzzed snapshot (fuzz_snapshot.h).
#include "fuzz/fuzz_snapshot.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (auto proc = pyprofd::fuzz::process_from_input(data, size)) {
    pyprofd::fuzz::Reached r;
    pyprofd::fuzz::run_threads(*proc, &r);
  }
  return 0;
}
