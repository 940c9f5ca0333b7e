// The walkers on recorded memory: a live interpreter's threads are read once through
// a recording wrapper, the target is killed, and the same reads replayed from the
// snapshot must give the same stacks. Then the snapshot is corrupted at random and
// the walkers must stay bounded and never crash.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <random>
#include <string>

#include "profiler/attach.h"
#include "profiler/thread_reader.h"
#include "profiler/code_cache.h"
#include "tests/unit/test_interpreters.h"

namespace pyprofd {
namespace {

// Forwards to the live process and keeps a copy of every range read.
class RecordingMemory : public RemoteMemory {
 public:
  RecordingMemory(std::unique_ptr<RemoteMemory> live, SnapshotMemory* out) : live_(std::move(live)), out_(out) {}
  bool read(uint64_t addr, void* dst, size_t len) override {
    if (!live_->read(addr, dst, len)) return false;
    out_->add(addr, dst, len);
    return true;
  }

 private:
  std::unique_ptr<RemoteMemory> live_;
  SnapshotMemory* out_;
};

class WalkerSnapshot : public ::testing::TestWithParam<Interp> {
 protected:
  void SetUp() override {
    python_ = GetParam().path;
    if (access(python_.c_str(), X_OK) != 0) GTEST_SKIP() << "interpreter not installed: " << python_;
    int ready[2], wait[2];
    ASSERT_EQ(pipe2(ready, O_CLOEXEC), 0);
    ASSERT_EQ(pipe2(wait, O_CLOEXEC), 0);
    std::string script = std::string(PYPROFD_SOURCE_DIR) + "/tests/targets/dump_target.py";
    pid_ = fork();
    if (pid_ == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      std::string r = std::to_string(dup(ready[1])), w = std::to_string(dup(wait[0]));
      execl(python_.c_str(), python_.c_str(), script.c_str(), r.c_str(), w.c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
    close(ready[1]);
    close(wait[0]);
    wait_fd_ = wait[1];
    pollfd p{ready[0], POLLIN, 0};
    char buf[16];
    ASSERT_EQ(poll(&p, 1, 60000), 1);
    ASSERT_GT(read(ready[0], buf, sizeof buf), 0);
    close(ready[0]);
  }
  void TearDown() override {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    if (wait_fd_ >= 0) close(wait_fd_);
  }
  void kill_target() {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

  std::string python_;
  pid_t pid_ = -1;
  int wait_fd_ = -1;
};

std::vector<std::string> names_of(PythonProcess& proc, const std::vector<ThreadSample>& threads) {
  CodeCache codes(*proc.memory, proc.layout, proc.code_type);
  std::vector<std::string> out;
  for (const auto& t : threads) {
    std::string stack = std::to_string(t.ts.thread_id) + ":";
    for (const auto& f : t.frames) {
      CodeInfo* c = codes.get(f.code);
      stack += (c ? c->qualname + "@" + std::to_string(c->line(f.byte_offset)) : std::string("?")) + ";";
    }
    out.push_back(stack);
  }
  return out;
}

TEST_P(WalkerSnapshot, ReplaysRecordedReadsAndSurvivesCorruption) {
  AttachError err;
  auto proc = attach_python(pid_, &err);
  ASSERT_NE(proc, nullptr) << err.message;
  SnapshotMemory snapshot;
  proc->memory = std::make_unique<RecordingMemory>(std::move(proc->memory), &snapshot);

  std::vector<ThreadSample> live;
  {
    ThreadReader reader(*proc);
    ASSERT_TRUE(reader.sample(&live, true));
    ASSERT_EQ(live.size(), 4u);
  }
  std::vector<std::string> live_names = names_of(*proc, live);  // also records the code objects
  for (const auto& t : live) {
    if (t.ts.native_id != static_cast<uint64_t>(pid_)) continue;  // the main thread: the deep one
    EXPECT_GT(t.frames.size(), 40u);
  }
  kill_target();

  // Replay: the same reads from the snapshot alone give the same stacks and names.
  auto replay = std::make_unique<SnapshotMemory>(snapshot);
  SnapshotMemory* replay_mem = replay.get();
  proc->memory = std::move(replay);
  std::vector<ThreadSample> again;
  {
    ThreadReader reader(*proc);
    ASSERT_TRUE(reader.sample(&again, true));
  }
  ASSERT_EQ(again.size(), live.size());
  for (size_t i = 0; i < live.size(); ++i) {
    EXPECT_EQ(again[i].ts.thread_id, live[i].ts.thread_id);
    ASSERT_EQ(again[i].frames.size(), live[i].frames.size());
    for (size_t j = 0; j < live[i].frames.size(); ++j) EXPECT_EQ(again[i].frames[j].code, live[i].frames[j].code);
  }
  EXPECT_EQ(names_of(*proc, again), live_names);

  // A code object whose address now holds another object is dropped from the cache.
  {
    SnapshotMemory mem(*replay_mem);
    CodeCache codes(mem, proc->layout, proc->code_type);
    for (const auto& t : again)
      for (const auto& f : t.frames) ASSERT_NE(codes.get(f.code), nullptr);
    size_t cached = codes.size();
    EXPECT_EQ(codes.revalidate(100000), 0u);
    EXPECT_EQ(codes.size(), cached);
    uint64_t victim = again[0].frames[0].code;
    std::vector<uint8_t> bytes(proc->layout.co_size);
    ASSERT_TRUE(mem.read(victim, bytes.data(), bytes.size()));
    int32_t other_line = 12345;
    std::memcpy(bytes.data() + proc->layout.co_firstlineno, &other_line, sizeof other_line);
    mem.add(victim, bytes);  // the address now holds a different code object
    EXPECT_EQ(codes.revalidate(100000), 1u);
    EXPECT_EQ(codes.size(), cached - 1);
  }

  // Corrupt the snapshot at random: never a crash, never an unbounded walk.
  std::mt19937_64 rng(12345);
  std::string path = std::string(PYPROFD_BINARY_DIR) + "/walker_snapshot_" + GetParam().label + ".bin";
  ASSERT_TRUE(replay_mem->save(path));
  for (int round = 0; round < 200; ++round) {
    auto bad = std::make_unique<SnapshotMemory>();
    ASSERT_TRUE(bad->load(path));
    // Re-add every range with some bytes flipped.
    std::ifstream in(path, std::ios::binary);
    uint64_t hdr[2];
    while (in.read(reinterpret_cast<char*>(hdr), sizeof hdr)) {
      std::vector<uint8_t> bytes(hdr[1]);
      in.read(reinterpret_cast<char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
      for (int k = 0; k < 4 && !bytes.empty(); ++k) bytes[rng() % bytes.size()] ^= static_cast<uint8_t>(1 + rng() % 255);
      if (round % 3 == 0 && bytes.size() >= 8) {
        // A pointer aimed back into the range: cycles must be cut.
        uint64_t self = hdr[0] + (rng() % bytes.size()) / 8 * 8;
        size_t at = (rng() % (bytes.size() / 8)) * 8;
        std::memcpy(bytes.data() + at, &self, 8);
      }
      bad->add(hdr[0], bytes);
    }
    proc->memory = std::move(bad);
    ThreadReader reader(*proc);
    std::vector<ThreadSample> threads;
    if (reader.sample(&threads, true)) {
      EXPECT_LE(threads.size(), ThreadReader::kMaxThreads);
      for (const auto& t : threads) EXPECT_LE(t.frames.size(), StackWalker::kMaxDepth);
      names_of(*proc, threads);
    }
  }
  unlink(path.c_str());
}

// A thread state read while its thread ends (thread churn) can hold any chunk pointers.
// The same torn state read on several ticks once sized the next chunk read from them:
// std::bad_alloc in the CI's test_churn. The walker must stay bounded instead.
TEST_P(WalkerSnapshot, TornChunkPointersRepeatedOverTicks) {
  AttachError err;
  auto proc = attach_python(pid_, &err);
  ASSERT_NE(proc, nullptr) << err.message;
  if (!proc->layout.has_stack_chunks) GTEST_SKIP() << "no stack chunks before 3.11";
  SnapshotMemory snapshot;
  proc->memory = std::make_unique<RecordingMemory>(std::move(proc->memory), &snapshot);
  std::vector<ThreadSample> live;
  {
    ThreadReader reader(*proc);
    ASSERT_TRUE(reader.sample(&live, true));
    ASSERT_FALSE(live.empty());
  }
  kill_target();
  auto replay = std::make_unique<SnapshotMemory>(snapshot);
  SnapshotMemory* mem = replay.get();
  proc->memory = std::move(replay);
  ThreadReader reader(*proc);
  std::vector<ThreadSample> threads;
  ASSERT_TRUE(reader.sample(&threads, true));
  const auto& l = proc->layout;
  for (const auto& t : live) {  // no frame, and a stack top 2^47 bytes past the chunk
    std::vector<uint8_t> ts(l.ts_size);
    ASSERT_TRUE(mem->read(t.ts.addr, ts.data(), ts.size()));
    uint64_t zero = 0, top = t.ts.chunk + (uint64_t{1} << 47);
    std::memcpy(ts.data() + l.ts_frame, &zero, 8);
    std::memcpy(ts.data() + l.ts_datastack_chunk + 8, &top, 8);
    mem->add(t.ts.addr, ts);
  }
  for (int tick = 0; tick < 4; ++tick) {
    ASSERT_TRUE(reader.sample(&threads, true));
    for (const auto& t : threads) EXPECT_TRUE(t.frames.empty());
  }
}

// Serves a snapshot, but the first read that covers `addr` sees 8 zero bytes there: a
// frame copied while it was set up (its f_back not yet written, its state already live).
class TornOnceMemory : public RemoteMemory {
 public:
  TornOnceMemory(const SnapshotMemory& snap, uint64_t addr) : snap_(snap), addr_(addr) {}
  bool read(uint64_t addr, void* dst, size_t len) override {
    if (!snap_.read(addr, dst, len)) return false;
    if (!torn && addr <= addr_ && addr_ + 8 <= addr + len) {
      std::memset(static_cast<uint8_t*>(dst) + (addr_ - addr), 0, 8);
      torn = true;
    }
    return true;
  }
  bool torn = false;

 private:
  SnapshotMemory snap_;
  uint64_t addr_;
};

// <=3.10: a frame in the middle of a chain read with no f_back ends the chain there. The
// truncated stack must be refused (a second read of that bottom disagrees) and the real
// one taken on the next tick.
TEST_P(WalkerSnapshot, TornBottomFrameIsRefused) {
  AttachError err;
  auto proc = attach_python(pid_, &err);
  ASSERT_NE(proc, nullptr) << err.message;
  if (proc->layout.frame_linkage != FrameLinkage::kFrameObjects) GTEST_SKIP() << "frame objects: 3.8-3.10 only";
  SnapshotMemory snapshot;
  proc->memory = std::make_unique<RecordingMemory>(std::move(proc->memory), &snapshot);
  std::vector<ThreadSample> live;
  {
    ThreadReader reader(*proc);
    ASSERT_TRUE(reader.sample(&live, true));
  }
  kill_target();
  const ThreadSample* deep = nullptr;
  for (const auto& t : live)  // the main thread: the deep one
    if (!deep || t.frames.size() > deep->frames.size()) deep = &t;
  ASSERT_NE(deep, nullptr);
  ASSERT_GT(deep->frames.size(), 10u);
  const size_t middle = deep->frames.size() / 2;
  auto torn = std::make_unique<TornOnceMemory>(snapshot, deep->frames[middle].frame + proc->layout.fr_back);
  TornOnceMemory* mem = torn.get();
  proc->memory = std::move(torn);
  ThreadReader reader(*proc);
  auto main_thread = [&](const std::vector<ThreadSample>& ts) {
    for (const auto& t : ts)
      if (t.ts.addr == deep->ts.addr) return &t;
    return static_cast<const ThreadSample*>(nullptr);
  };
  std::vector<ThreadSample> threads;
  ASSERT_TRUE(reader.sample(&threads, true));
  ASSERT_TRUE(mem->torn);
  ASSERT_NE(main_thread(threads), nullptr);
  EXPECT_EQ(main_thread(threads)->status, WalkStatus::kChanged);
  ASSERT_TRUE(reader.sample(&threads, true));
  EXPECT_EQ(main_thread(threads)->status, WalkStatus::kOk);
  EXPECT_EQ(main_thread(threads)->frames.size(), deep->frames.size());
}

INSTANTIATE_TEST_SUITE_P(Interpreters, WalkerSnapshot, ::testing::ValuesIn(test_interpreters()),
                         [](const auto& info) { return std::string(info.param.label); });

}  // namespace
}  // namespace pyprofd
