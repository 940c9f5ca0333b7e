// Test-only recorder of fuzz seeds: attaches to a live CPython (read-only), runs the fuzz
// drivers (threads, objects, asyncio) through a RecordingMemory and writes every byte
// range they read, with the attach facts, as one fuzz input (fuzz_snapshot.h). The
// recording is replayed at once and must reach exactly what the live run reached.
// Usage: record_snapshot PID OUT_FILE
//        record_snapshot --check FILE...   (each seed must reach frames, code objects,
//                                           objects, tasks, stacks and await links)
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>

#include "fuzz/fuzz_snapshot.h"
#include "profiler/debug_offsets.h"

namespace {

using pyprofd::fuzz::Reached;

void print(const char* what, const Reached& r) {
  std::printf("%s: frames %zu codes %zu objects %zu tasks %zu stacks %zu awaits %zu\n", what, r.frames, r.codes,
              r.objects, r.tasks, r.stacks, r.awaits);
}

bool replay(const std::string& bytes, Reached* r) {
  auto proc = pyprofd::fuzz::process_from_input(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  if (!proc) return false;
  pyprofd::fuzz::run_all(*proc, r);
  return true;
}

int check(int n, char** files) {
  int bad = 0;
  for (int i = 0; i < n; ++i) {
    std::ifstream in(files[i], std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    Reached r;
    bool ok = replay(bytes, &r) && r.frames && r.codes && r.objects && r.tasks && r.stacks && r.awaits;
    print(files[i], r);
    if (!ok) std::printf("%s: FAILED: the seed does not reach every reader\n", files[i]), ++bad;
  }
  return bad ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 2 && std::strcmp(argv[1], "--check") == 0) return check(argc - 2, argv + 2);
  if (argc != 3) return std::fprintf(stderr, "usage: record_snapshot PID OUT_FILE | --check FILE...\n"), 2;
  pyprofd::AttachError err;
  auto proc = pyprofd::attach_python(std::atoi(argv[1]), &err);
  if (!proc) return std::fprintf(stderr, "record_snapshot: %s\n", err.message.c_str()), 1;
  auto* rec = new pyprofd::fuzz::RecordingMemory(std::move(proc->memory));
  proc->memory.reset(rec);
  if (proc->layout.has_debug_offsets) {  // replay applies them from the snapshot: record their bytes
    std::string why;
    pyprofd::apply_debug_offsets(*proc->memory, proc->runtime_addr, &proc->layout, &why);
  }
  Reached live, again;
  pyprofd::fuzz::run_all(*proc, &live);
  int major = std::atoi(proc->version.c_str());
  int minor = std::atoi(proc->version.c_str() + proc->version.find('.') + 1);
  std::string bytes = rec->encode(major, minor, proc->runtime_addr, proc->code_type);
  print("live", live);
  if (!replay(bytes, &again) || !(again == live))
    return print("replay", again), std::fprintf(stderr, "record_snapshot: the replay differs from the live run\n"), 1;
  std::string tmp = std::string(argv[2]) + ".tmp";
  if (!std::ofstream(tmp, std::ios::binary).write(bytes.data(), bytes.size()) || std::rename(tmp.c_str(), argv[2]) != 0)
    return std::fprintf(stderr, "record_snapshot: cannot write %s\n", argv[2]), 1;
  std::printf("%s: Python %s, %zu bytes\n", argv[2], proc->version.c_str(), bytes.size());
  return 0;
}
