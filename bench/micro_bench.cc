// Micro-benchmarks of pyprofd's per-sample hot paths on in-memory data (no target
// process): line-table lookups, Profile::add of a deep stack, and the pstats export.
// Run: build/micro_bench [--benchmark_filter=REGEX]  (bench/run.sh runs it too).
#include <benchmark/benchmark.h>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "exporters/pstats.h"
#include "model/profile.h"
#include "symbolizer/line_table.h"

namespace pyprofd {
namespace {

// ------------------------------------------------------------------ line tables
// A synthetic line table for a function of `lines` source lines, each 2..12
// instructions (2-byte code units) long, in the format of 3.minor.
std::vector<uint8_t> make_table(int minor, int lines, uint32_t seed, int* code_bytes) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> units(2, 12);
  std::vector<uint8_t> t;
  int bytes = 0;
  for (int i = 0; i < lines; ++i) {
    int n = units(rng);
    int delta = i == 0 ? 0 : 1;
    if (minor <= 9) {
      // co_lnotab: (address delta, line delta) — the delta applies from the new address on.
      t.push_back(static_cast<uint8_t>(n * 2));
      t.push_back(static_cast<uint8_t>(1));
    } else if (minor == 10) {
      // co_linetable 3.10: (range length, line delta of this range).
      t.push_back(static_cast<uint8_t>(n * 2));
      t.push_back(static_cast<uint8_t>(delta));
    } else {
      // 3.11+ location table: one-line form (code 10 + delta) with two column bytes,
      // split into entries of at most 8 code units.
      for (int left = n; left > 0;) {
        int len = left > 8 ? 8 : left;
        t.push_back(static_cast<uint8_t>(0x80 | ((10 + delta) << 3) | (len - 1)));
        t.push_back(4);
        t.push_back(20);
        delta = 0;
        left -= len;
      }
    }
    bytes += n * 2;
  }
  *code_bytes = bytes;
  return t;
}

std::vector<int> random_offsets(int code_bytes, size_t n) {
  std::mt19937 rng(7);
  std::uniform_int_distribution<int> off(0, code_bytes / 2 - 1);
  std::vector<int> out(n);
  for (auto& o : out) o = off(rng) * 2;
  return out;
}

// LineTable::line: the per-frame lookup of a cached, decoded table.
void BM_LineTableLookup(benchmark::State& state) {
  const int minor = static_cast<int>(state.range(0));
  const int lines = static_cast<int>(state.range(1));
  int code_bytes = 0;
  auto raw = make_table(minor, lines, 1, &code_bytes);
  LineTable table(minor, raw, 100);
  auto offsets = random_offsets(code_bytes, 4096);
  size_t i = 0;
  int64_t sum = 0;
  for (auto _ : state) {
    sum += table.line(offsets[i]);
    i = (i + 1) & 4095;
  }
  benchmark::DoNotOptimize(sum);
  state.counters["ranges"] = static_cast<double>(table.range_count());
}
BENCHMARK(BM_LineTableLookup)->ArgsProduct({{8, 10, 11, 13}, {20, 400}})->ArgNames({"minor", "lines"});

// A 50-deep stack's worth of lookups (what one sample costs in line numbers).
void BM_LineTableLookup50Frames(benchmark::State& state) {
  const int minor = static_cast<int>(state.range(0));
  std::vector<LineTable> tables;
  std::vector<int> offs;
  for (int f = 0; f < 50; ++f) {
    int code_bytes = 0;
    auto raw = make_table(minor, 10 + f * 3, 100 + f, &code_bytes);
    tables.emplace_back(minor, raw, 10 * f);
    offs.push_back((code_bytes / 2 - 1) / 3 * 2);
  }
  for (auto _ : state) {
    int64_t sum = 0;
    for (int f = 0; f < 50; ++f) sum += tables[f].line(offs[f]);
    benchmark::DoNotOptimize(sum);
  }
}
BENCHMARK(BM_LineTableLookup50Frames)->Arg(8)->Arg(11)->ArgName("minor");

// Decoding a table once (a code-object cache miss).
void BM_LineTableBuild(benchmark::State& state) {
  const int minor = static_cast<int>(state.range(0));
  int code_bytes = 0;
  auto raw = make_table(minor, 400, 1, &code_bytes);
  for (auto _ : state) {
    LineTable table(minor, raw, 100);
    benchmark::DoNotOptimize(table.range_count());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(raw.size()));
}
BENCHMARK(BM_LineTableBuild)->Arg(8)->Arg(10)->Arg(11)->ArgName("minor");

// line_for_offset: the uncached linear scan, for comparison with the cached lookup.
void BM_LineForOffsetUncached(benchmark::State& state) {
  const int minor = static_cast<int>(state.range(0));
  int code_bytes = 0;
  auto raw = make_table(minor, 400, 1, &code_bytes);
  auto offsets = random_offsets(code_bytes, 4096);
  size_t i = 0;
  int64_t sum = 0;
  for (auto _ : state) {
    sum += line_for_offset(minor, raw.data(), raw.size(), 100, offsets[i]);
    i = (i + 1) & 4095;
  }
  benchmark::DoNotOptimize(sum);
}
BENCHMARK(BM_LineForOffsetUncached)->Arg(8)->Arg(11)->ArgName("minor");

// ------------------------------------------------------------------ Profile::add
std::vector<StackFrame> deep_stack(Profile* p, int depth) {
  std::vector<StackFrame> frames;
  for (int d = 0; d < depth; ++d) {
    uint32_t id = p->intern(FunctionKey{"function_" + std::to_string(d), "/srv/app/module_" + std::to_string(d % 7) + ".py",
                                        10 + d});
    frames.push_back(StackFrame{id, 12 + d});
  }
  return frames;
}

SampleLabels labels_of(uint64_t tid) {
  SampleLabels l;
  l.pid = 4242;
  l.thread_id = tid;
  l.thread_name = "MainThread";
  return l;
}

// The steady state: the same 50-deep stack sampled again (hash + compare, no allocation).
void BM_ProfileAddSameStack(benchmark::State& state) {
  Profile p;
  auto frames = deep_stack(&p, static_cast<int>(state.range(0)));
  auto labels = labels_of(4242);
  for (auto _ : state) p.add(labels, frames, 1000000);
  benchmark::DoNotOptimize(p.stacks.size());
}
BENCHMARK(BM_ProfileAddSameStack)->Arg(50)->Arg(200)->ArgName("depth");

// A hot loop: the leaf's line moves over 64 lines and 4 threads take turns, so
// 256 distinct stacks are found again and again.
void BM_ProfileAddVaryingLeaf(benchmark::State& state) {
  Profile p;
  auto frames = deep_stack(&p, 50);
  std::vector<SampleLabels> labels;
  for (uint64_t t = 0; t < 4; ++t) labels.push_back(labels_of(100 + t));
  uint64_t n = 0;
  for (auto _ : state) {
    frames.back().line = 100 + static_cast<int>(n & 63);
    p.add(labels[(n >> 6) & 3], frames, 1000000);
    ++n;
  }
  state.counters["stacks"] = static_cast<double>(p.stacks.size());
}
BENCHMARK(BM_ProfileAddVaryingLeaf);

// Interning a function already known (what a code-object cache miss adds).
void BM_ProfileInternKnown(benchmark::State& state) {
  Profile p;
  deep_stack(&p, 500);
  FunctionKey key{"function_250", "/srv/app/module_5.py", 260};
  for (auto _ : state) benchmark::DoNotOptimize(p.intern(key));
}
BENCHMARK(BM_ProfileInternKnown);

// ------------------------------------------------------------------ pstats export
// A moderately large profile: `functions` functions over 40 files, `stacks` distinct
// stacks 5..60 deep drawn as random walks down a call tree, a few threads.
Profile make_profile(int functions, int stacks) {
  Profile p;
  p.mode = ProfileMode::kWall;
  p.rate_hz = 1000;
  std::vector<uint32_t> ids;
  for (int f = 0; f < functions; ++f)
    ids.push_back(p.intern(FunctionKey{"func_" + std::to_string(f), "/srv/app/pkg_" + std::to_string(f % 40) + "/mod.py",
                                       1 + 17 * (f / 40)}));
  std::mt19937 rng(42);
  std::uniform_int_distribution<int> depth(5, 60), fn(0, functions - 1), line(1, 400), thread(0, 3);
  std::geometric_distribution<int> count(0.05);
  std::vector<StackFrame> frames;
  for (int s = 0; s < stacks; ++s) {
    frames.clear();
    uint32_t parent = 0;
    int d = depth(rng);
    for (int i = 0; i < d; ++i) {
      // Mostly a fixed child of the parent (a tree), sometimes any function (recursion, shared helpers).
      uint32_t f = (rng() % 8 == 0) ? ids[fn(rng)] : ids[(parent * 7 + i * 13 + 1) % functions];
      frames.push_back(StackFrame{f, line(rng)});
      parent = f;
    }
    uint64_t k = 1 + count(rng);
    p.add(labels_of(100 + thread(rng)), frames, k * 1000000, k);
  }
  return p;
}

void BM_ExportPstats(benchmark::State& state) {
  Profile p = make_profile(static_cast<int>(state.range(0)), static_cast<int>(state.range(1)));
  size_t bytes = 0;
  for (auto _ : state) {
    std::string out = export_pstats(p);
    bytes = out.size();
    benchmark::DoNotOptimize(out.data());
  }
  state.counters["file_KB"] = static_cast<double>(bytes) / 1024.0;
  state.counters["samples"] = static_cast<double>(p.total_samples());
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(p.stacks.size()));
}
BENCHMARK(BM_ExportPstats)->Args({500, 5000})->Args({3000, 50000})->ArgNames({"functions", "stacks"})
    ->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace pyprofd

BENCHMARK_MAIN();
