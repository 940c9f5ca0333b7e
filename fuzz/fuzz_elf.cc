// libFuzzer target (e, ELF): ElfImage (libelf) over a fuzzed file: symbols, load bias,
// reads of initialised data and the PY_VERSION scan. The bytes go to a memfd that is
// opened by its /proc/self/fd path, as attach opens a target's image.
#include <sys/mman.h>
#include <unistd.h>

#include <string>

#include "symbolizer/elf_image.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static int fd = memfd_create("fuzz_elf", 0);
  if (fd < 0 || ftruncate(fd, 0) != 0 || pwrite(fd, data, size, 0) != static_cast<ssize_t>(size)) return 0;
  std::string err;
  auto img = pyprofd::ElfImage::open("/proc/self/fd/" + std::to_string(fd), &err);
  if (!img) return 0;
  for (const char* name : {"_PyRuntime", "PyCode_Type", "Py_Version", "_Py_DebugOffsets"}) {
    auto v = img->symbol(name);
    img->symbol_size(name);
    uint64_t word;
    if (v) img->read_vaddr(*v, &word, sizeof word);
  }
  for (const auto& s : img->segments()) img->load_bias(s.vaddr, s.offset);
  img->find_python_version();
  return 0;
}
