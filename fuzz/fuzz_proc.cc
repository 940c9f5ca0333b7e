// libFuzzer target (e, /proc): /proc/PID/maps and /proc/PID/stat parsers.
#include <string>

#include "profiler/proc_maps.h"
#include "profiler/proc_stat.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  pyprofd::parse_maps(text);
  pyprofd::ProcStat st;
  pyprofd::parse_proc_stat(text.data(), text.size(), &st);
  return 0;
}
