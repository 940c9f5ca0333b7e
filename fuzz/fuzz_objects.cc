// libFuzzer target (c): strings, ints and other remote objects. Snapshot inputs run
// PyObjects (sys.modules, lists, tuples, dicts, sets, instance attributes); any other
// input is decoded directly as a str and an int object of every layout.
#include <cstring>
#include <string>

#include "fuzz/fuzz_snapshot.h"
#include "profiler/layout.h"
#include "profiler/py_objects.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size >= 4 && std::memcmp(data, "PPFZ", 4) == 0) {
    if (auto proc = pyprofd::fuzz::process_from_input(data, size)) {
      pyprofd::fuzz::Reached r;
      pyprofd::fuzz::run_objects(*proc, &r);
    }
    return 0;
  }
  for (int minor = 8; minor <= 13; ++minor) {
    const pyprofd::Layout* l = pyprofd::builtin_layout(3, minor);
    std::string s;
    pyprofd::decode_str_header(data, size, *l);
    pyprofd::decode_str(data, size, *l, 4096, &s);
    pyprofd::decode_int(data, size, *l);
  }
  return 0;
}
