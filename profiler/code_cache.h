// Code objects decoded once and cached by remote address: names, file, first line
// and line table (pre-decoded into ranges, so a line lookup is a binary search).
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>

#include "profiler/layout.h"
#include "profiler/py_objects.h"
#include "profiler/remote_memory.h"
#include "profiler/span_batch.h"
#include "symbolizer/line_table.h"

namespace pyprofd {

struct CodeInfo {
  std::string name;       // co_name
  std::string qualname;   // co_qualname (3.11+), else co_name
  std::string file;       // co_filename
  int first_line = 0;     // co_firstlineno
  bool generator = false; // generator, coroutine or async generator code (runs in its own frame)
  std::unique_ptr<LineTable> lines;
  uint32_t function_id = UINT32_MAX;  // the profile's id for this function, set by the sampler
  // What identifies this code object at its address: if these fields change, the object
  // was freed and the address reused.
  uint64_t signature[4] = {};

  // Current line for an instruction byte offset (-1: not started yet, the first line).
  int line(int32_t byte_offset) const;
};

class CodeCache {
 public:
  // code_type: address of PyCode_Type in the target (0 = do not check object types).
  CodeCache(RemoteMemory& mem, const Layout& layout, uint64_t code_type)
      : mem_(mem), layout_(layout), objs_(mem, layout), code_type_(code_type) {}

  // The decoded code object at addr, or nullptr if it cannot be read or is not a code object.
  CodeInfo* get(uint64_t addr);
  size_t size() const { return cache_.size(); }

  // Re-reads the identifying fields of up to max cached code objects (round-robin, in
  // batched reads) and forgets those whose address now holds something else. Also
  // forgets the addresses remembered as not-code. Returns how many were dropped.
  size_t revalidate(size_t max);
  void clear() { cache_.clear(); }

  // True if obj's type is PyCode_Type (or no type check is configured).
  bool is_code(uint64_t obj);

 private:
  std::unique_ptr<CodeInfo> decode(uint64_t addr);

  RemoteMemory& mem_;
  const Layout& layout_;
  PyObjects objs_;
  uint64_t code_type_;
  std::unordered_map<uint64_t, std::unique_ptr<CodeInfo>> cache_;
  std::unordered_map<uint64_t, bool> negative_;  // addresses known not to be code, bounded
  uint64_t revalidate_from_ = 0;                  // next address to check, round-robin
  MergedReads merged_;                            // revalidate's reads, merged into spans
};

}  // namespace pyprofd
