// The fuzz targets' input: a recorded (or fuzzed) snapshot of a CPython process's memory,
// plus what attach would have found (version, _PyRuntime, PyCode_Type). The same drivers
// run over a live process (the recorder, through RecordingMemory) and over a snapshot
// (the fuzz targets), so a recorded seed reaches every reader the live run reached.
//
// Format (little-endian): "PPFZ" u8 major, u8 minor, u16 0, u64 runtime_addr,
// u64 code_type, then ranges {u64 addr, u32 len, len bytes} until the end. Truncated
// or oversized fields are clipped, never rejected: every byte string is some input.
#pragma once
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "profiler/attach.h"
#include "profiler/remote_memory.h"

namespace pyprofd::fuzz {

// A PythonProcess over the snapshot in data; nullptr if the header is short or the
// version has no builtin layout (the minor byte is folded into 3.8-3.13 first). Its memory
// reads data in place: data must outlive it.
std::unique_ptr<PythonProcess> process_from_input(const uint8_t* data, size_t size);

// Records every byte range read through it (merged), for writing a seed.
class RecordingMemory : public RemoteMemory {
 public:
  explicit RecordingMemory(std::unique_ptr<RemoteMemory> inner) : inner_(std::move(inner)) {}
  bool read(uint64_t addr, void* dst, size_t len) override;
  // The input bytes for these ranges and this header.
  std::string encode(int major, int minor, uint64_t runtime_addr, uint64_t code_type) const;

 private:
  std::unique_ptr<RemoteMemory> inner_;
  std::map<uint64_t, std::vector<uint8_t>> ranges_;  // disjoint, non-adjacent
};

// What the targets run. Each reads only through proc.memory and is bounded, and returns
// what it found, so a seed's replay can be checked against the live run it was recorded from.
struct Reached {
  size_t frames = 0, codes = 0;  // run_threads: frames walked, code objects decoded
  size_t objects = 0;            // run_objects: strs and ints decoded
  size_t tasks = 0, stacks = 0, awaits = 0;  // run_asyncio: tasks, task stacks, await links
  bool operator==(const Reached& o) const {
    return frames == o.frames && codes == o.codes && objects == o.objects && tasks == o.tasks &&
           stacks == o.stacks && awaits == o.awaits;
  }
};
void run_threads(PythonProcess& proc, Reached* r);  // ThreadReader (cold and known-threads paths) + code objects
void run_objects(PythonProcess& proc, Reached* r);  // sys.modules, sys attributes, str/int/list/tuple/dict/set readers
void run_asyncio(PythonProcess& proc, Reached* r);  // AsyncioReader read_tasks + build_stacks
void run_all(PythonProcess& proc, Reached* r);

}  // namespace pyprofd::fuzz
