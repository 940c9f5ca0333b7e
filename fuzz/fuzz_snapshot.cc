#include "fuzz/fuzz_snapshot.h"

#include <algorithm>
#include <cstring>

#include "profiler/asyncio_tasks.h"
#include "profiler/code_cache.h"
#include "profiler/debug_offsets.h"
#include "profiler/layout.h"
#include "profiler/py_objects.h"
#include "profiler/thread_reader.h"

namespace pyprofd::fuzz {
namespace {

constexpr size_t kHeader = 24;
constexpr size_t kMaxRanges = 1 << 14;
constexpr size_t kMaxFrames = 512;  // code objects decoded per run

template <class T>
T get(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

template <class T>
void put(std::string* out, T v) {
  out->append(reinterpret_cast<const char*>(&v), sizeof v);
}

// The input's ranges read in place (SnapshotMemory would copy each into a map node: at
// ~80 KB per input, its allocations and the tree's traced compares were a third of each
// exec). The lookup is the harness, not code under test: no coverage tracing there.
class InputMemory : public RemoteMemory {
 public:
  struct Range {
    uint64_t addr;
    size_t len;
    const uint8_t* bytes;
  };
  explicit InputMemory(std::vector<Range> ranges) : ranges_(std::move(ranges)) {
    if (strictly_sorted()) return;  // as recorded, and as most mutations leave it
    // A later range at the same address replaces an earlier one, as SnapshotMemory::add did.
    std::stable_sort(ranges_.begin(), ranges_.end(), [](const Range& a, const Range& b) { return a.addr < b.addr; });
    auto last = std::unique(ranges_.rbegin(), ranges_.rend(), [](const Range& a, const Range& b) { return a.addr == b.addr; });
    ranges_.erase(ranges_.begin(), last.base());
  }
  __attribute__((no_sanitize("coverage"))) bool read(uint64_t addr, void* dst, size_t len) override {
    if (len == 0) return true;
    size_t lo = 0, hi = ranges_.size();  // the first range starting after addr (by hand: std's is traced)
    while (lo < hi) {
      size_t mid = (lo + hi) / 2;
      if (ranges_[mid].addr <= addr) lo = mid + 1; else hi = mid;
    }
    if (lo == 0) return false;
    const Range& r = ranges_[lo - 1];
    uint64_t off = addr - r.addr;
    if (off > r.len || r.len - off < len) return false;
    std::memcpy(dst, r.bytes + off, len);
    return true;
  }

 private:
  __attribute__((no_sanitize("coverage"))) bool strictly_sorted() const {
    for (size_t i = 1; i < ranges_.size(); ++i)
      if (ranges_[i - 1].addr >= ranges_[i].addr) return false;
    return true;
  }
  std::vector<Range> ranges_;
};

}  // namespace

std::unique_ptr<PythonProcess> process_from_input(const uint8_t* data, size_t size) {
  if (size < kHeader || std::memcmp(data, "PPFZ", 4) != 0) return nullptr;
  int minor = 8 + data[5] % 6;  // every fuzzed byte picks some supported version
  const Layout* layout = builtin_layout(3, minor);
  if (!layout) return nullptr;
  auto proc = std::make_unique<PythonProcess>();
  proc->layout = *layout;
  proc->runtime_addr = get<uint64_t>(data + 8);
  proc->code_type = get<uint64_t>(data + 16);
  std::vector<InputMemory::Range> ranges;
  size_t pos = kHeader;
  while (pos + 12 <= size && ranges.size() < kMaxRanges) {
    uint64_t addr = get<uint64_t>(data + pos);
    size_t len = std::min<size_t>(get<uint32_t>(data + pos + 8), size - pos - 12);
    ranges.push_back({addr, len, data + pos + 12});
    pos += 12 + len;
  }
  proc->memory = std::make_unique<InputMemory>(std::move(ranges));
  if (proc->layout.has_debug_offsets) {
    std::string why;
    if (!apply_debug_offsets(*proc->memory, proc->runtime_addr, &proc->layout, &why)) return nullptr;
  }
  return proc;
}

bool RecordingMemory::read(uint64_t addr, void* dst, size_t len) {
  if (!inner_->read(addr, dst, len)) return false;
  if (len == 0) return true;
  // Merge with every recorded range this one overlaps or touches.
  uint64_t lo = addr, hi = addr + len;
  std::vector<uint8_t> bytes(static_cast<const uint8_t*>(dst), static_cast<const uint8_t*>(dst) + len);
  auto it = ranges_.upper_bound(addr);
  if (it != ranges_.begin() && std::prev(it)->first + std::prev(it)->second.size() >= addr) --it;
  while (it != ranges_.end() && it->first <= hi) {
    uint64_t s = it->first, e = s + it->second.size();
    std::vector<uint8_t> merged(std::max(e, hi) - std::min(s, lo));
    uint64_t base = std::min(s, lo);
    std::memcpy(merged.data() + (s - base), it->second.data(), it->second.size());
    std::memcpy(merged.data() + (lo - base), bytes.data(), bytes.size());  // newest bytes win
    lo = base;
    hi = base + merged.size();
    bytes.swap(merged);
    it = ranges_.erase(it);
  }
  ranges_[lo] = std::move(bytes);
  return true;
}

std::string RecordingMemory::encode(int major, int minor, uint64_t runtime_addr, uint64_t code_type) const {
  std::string out("PPFZ");
  out.push_back(static_cast<char>(major));
  out.push_back(static_cast<char>(minor - 8));  // folded back by process_from_input
  put<uint16_t>(&out, 0);
  put(&out, runtime_addr);
  put(&out, code_type);
  for (const auto& [addr, bytes] : ranges_) {
    put(&out, addr);
    put(&out, static_cast<uint32_t>(bytes.size()));
    out.append(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  }
  return out;
}

void run_threads(PythonProcess& proc, Reached* r) {
  ThreadReader reader(proc);
  std::vector<ThreadSample> threads;
  if (!reader.sample(&threads, true)) return;
  reader.sample(&threads, true);  // the same threads again: the one-readv path
  CodeCache codes(*proc.memory, proc.layout, proc.code_type);
  size_t done = 0;
  for (const ThreadSample& t : threads)
    for (const RawFrame& f : t.frames) {
      if (done++ >= kMaxFrames) return;
      ++r->frames;
      if (CodeInfo* ci = codes.get(f.code)) ci->line(f.byte_offset), ++r->codes;
    }
  codes.revalidate(kMaxFrames);
}

void run_objects(PythonProcess& proc, Reached* r) {
  ThreadReader reader(proc);
  std::vector<ThreadSample> threads;
  if (!reader.read_threads(&threads, false)) return;
  PyObjects o(*proc.memory, proc.layout);
  uint64_t interp = reader.interpreter();
  o.modules_signature(interp);
  auto sys = o.module(interp, "sys");
  if (!sys) return;
  std::vector<uint64_t> items;
  for (const char* name : {"argv", "path", "builtin_module_names"})
    if (auto seq = o.module_attr(*sys, name); seq && o.sequence_items(*seq, &items, 64))
      for (uint64_t s : items) r->objects += o.read_str(s).has_value();
  for (const char* name : {"maxsize", "hexversion", "api_version"})
    if (auto v = o.module_attr(*sys, name)) r->objects += o.read_int(*v).has_value(), o.type_name(*v);
  if (auto mods = o.module_attr(*sys, "modules")) {
    std::vector<std::pair<uint64_t, uint64_t>> kv;
    if (o.dict_items(*mods, &kv, 64))
      for (auto& [k, v] : kv) r->objects += o.read_str(k, 64).has_value(), o.type_name(v);
  }
  if (auto tasks = o.module(interp, "asyncio.tasks"))
    for (const char* name : {"_all_tasks", "_scheduled_tasks", "_eager_tasks"})
      if (auto ws = o.module_attr(*tasks, name)) {
        items.clear();
        auto data = o.instance_attr(*ws, "data");
        o.set_items(data ? *data : *ws, &items, 64);
        for (uint64_t t : items) r->objects += o.type_name(t).has_value();
      }
}

void run_asyncio(PythonProcess& proc, Reached* r) {
  ThreadReader reader(proc);
  std::vector<ThreadSample> threads;
  if (!reader.sample(&threads, false)) return;
  AsyncioReader asyncio(*proc.memory, proc.layout, reader.interpreter());
  for (int tick = 0; tick < 2; ++tick) {  // the second tick uses the prefetched chains
    std::vector<TaskInfo> tasks;
    if (!asyncio.read_tasks(&tasks)) return;
    std::vector<AsyncStack> stacks;
    asyncio.build_stacks(tasks, threads, &stacks);
    r->tasks = tasks.size();
    r->stacks = stacks.size();
    r->awaits = 0;
    for (const TaskInfo& t : tasks) r->awaits += t.awaits.size();
    asyncio.add_done_referenced(&tasks);  // dump's view (3.14+: finished tasks still referenced)
  }
}

void run_all(PythonProcess& proc, Reached* r) {
  run_threads(proc, r);
  run_objects(proc, r);
  run_asyncio(proc, r);
}

}  // namespace pyprofd::fuzz
