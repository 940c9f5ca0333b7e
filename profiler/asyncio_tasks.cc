#include "profiler/asyncio_tasks.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstring>
#include <unordered_set>
#include <utility>

#include "profiler/asyncio_debug.h"


namespace pyprofd {

namespace {

constexpr size_t kMaxCache = 1 << 14;      // cached types / code objects before a reset
constexpr size_t kNameRead = 96;           // bytes read per task name (header + short ASCII text)
constexpr size_t kMaxName = 1024;          // code points kept of a task name
constexpr size_t kCallbackRead = 80;       // enough for func_closure on every version
constexpr size_t kTupleRead = 24 + 8 * 8;  // a small tuple: header + up to 8 items


// A name fit to print: not empty, no C0 control characters or DEL.
bool clean_name(const std::string& s) {
  if (s.empty()) return false;
  for (unsigned char c : s)
    if (c < 0x20 || c == 0x7f) return false;
  return true;
}

}  // namespace

AsyncioReader::AsyncioReader(RemoteMemory& mem, const Layout& layout, uint64_t interp_state, pid_t pid)
    : mem_(mem), l_(layout), al_(nullptr), interp_(interp_state), pid_(pid), objs_(mem, layout) {
  if (const AsyncioLayout* table = asyncio_layout(layout.minor)) {
    al_own_ = *table;
    al_ = &al_own_;
  } else {
    spdlog::warn("asyncio tasks are not read on Python {}: no layout for it", layout.name());
  }
}

AsyncioReader::AsyncioReader(RemoteMemory& mem, const Layout& layout, uint64_t interp_state, pid_t pid,
                             const AsyncioLayout& table)
    : AsyncioReader(mem, layout, interp_state, pid) {
  al_own_ = table;
  al_ = &al_own_;
}

// 3.14+: _asyncio states its own offsets; a patch release that moved TaskObj or the
// thread state's fields is read with them. Tried once, when asyncio is first found
// imported (3.14 maps _asyncio's .so only then); without it the table stays.
void AsyncioReader::use_debug_section() {
  if (section_tried_ || !al_->task_node || !pid_) return;
  section_tried_ = true;
  std::string where, why, changed;
  auto sec = read_asyncio_debug(pid_, mem_, &where);
  if (!sec) {
    spdlog::debug("asyncio: no .AsyncioDebug section in pid {}'s files; offsets from the table", pid_);
  } else if (!apply_asyncio_debug(*sec, &al_own_, &why, &changed)) {
    spdlog::warn("asyncio: .AsyncioDebug in {} not used ({}); offsets from the table", where, why);
  } else {
    offsets_source_ = ".AsyncioDebug in " + where;
    if (changed.empty()) spdlog::debug("asyncio: offsets from {} (as the table)", offsets_source_);
    else spdlog::info("asyncio: offsets from {}, which differ from the table: {}", offsets_source_, changed);
  }
}

// Looks the registries and asyncio's types up once (they live as long as the module).
// 1: resolved; 0: asyncio not (fully) imported; -1: no layout for this version.
int AsyncioReader::resolve() {
  if (reg_.resolved) return 1;
  if (!al_) return -1;
  // Looking for the module walks sys.modules (tens of reads): a process that has not
  // imported asyncio (a gunicorn master) is looked at again only after some import.
  auto sig = objs_.modules_signature(interp_);
  if (sig && modules_sig_ && *sig == *modules_sig_) return 0;
  auto tasks_mod = objs_.module(interp_, "asyncio.tasks");
  if (!tasks_mod) {
    modules_sig_ = sig;
    return 0;
  }
  auto attr = [&](uint64_t mod, const char* name) { return objs_.module_attr(mod, name).value_or(0); };
  Registries r;
  uint64_t weak_set = attr(*tasks_mod, al_->weak_registry);
  if (weak_set) r.all_tasks = objs_.instance_attr(weak_set, "data").value_or(0);
  if (al_->eager_registry) r.eager_tasks = attr(*tasks_mod, al_->eager_registry);
  r.current_tasks = attr(*tasks_mod, "_current_tasks");
  r.c_task = attr(*tasks_mod, "_CTask");
  r.py_task = attr(*tasks_mod, "_PyTask");
  r.gathering = attr(*tasks_mod, "_GatheringFuture");
  if (auto futures = objs_.module(interp_, "asyncio.futures")) {
    r.c_future = attr(*futures, "_CFuture");
    r.py_future = attr(*futures, "_PyFuture");
  }
  if (!r.all_tasks || !(r.c_task || r.py_task)) return 0;  // mid-import: retry next time
  use_debug_section();
  r.resolved = true;
  reg_ = r;
  types_.clear();
  return 1;
}

AsyncioReader::TypeInfo AsyncioReader::type_info(uint64_t type) {
  auto it = types_.find(type);
  if (it != types_.end()) return it->second;
  if (types_.size() >= kMaxCache) types_.clear();
  TypeInfo info;
  if (plausible(type)) {
    // asyncio classes (and their subclasses): compare the tp_base chain with the module's types.
    uint64_t t = type;
    for (int i = 0; i < 16 && plausible(t) && info.kind == Kind::kOther; ++i) {
      if (t == reg_.gathering) info.kind = Kind::kGathering;
      else if (t == reg_.c_task) info.kind = Kind::kCTask;
      else if (t == reg_.py_task) info.kind = Kind::kPyTask;
      else if (t == reg_.c_future || t == reg_.py_future) info.kind = Kind::kFuture;
      else if (!mem_.read_value(t + al_->tp_base, &t)) break;
    }
    uint64_t name_ptr = 0;
    if (mem_.read_value(type + l_.tp_name, &name_ptr)) info.name = objs_.read_cstr(name_ptr, 256).value_or("");
    if (info.kind == Kind::kOther) {
      static const std::pair<const char*, Kind> kBuiltins[] = {
          {"coroutine", Kind::kCoro}, {"generator", Kind::kGen}, {"weakref", Kind::kWeakref},
          {"weakref.ReferenceType", Kind::kWeakref}, {"str", Kind::kStr}, {"int", Kind::kInt},
          {"list", Kind::kList}, {"tuple", Kind::kTuple}, {"functools.partial", Kind::kPartial},
          {"function", Kind::kFunction}, {"method", Kind::kMethod}, {"cell", Kind::kCell},
          {"NoneType", Kind::kNone}};
      for (auto& [n, k] : kBuiltins) {
        if (info.name == n) info.kind = k;
      }
    }
    // Display name without the module ("_asyncio.Future" -> "Future").
    auto dot = info.name.rfind('.');
    if (dot != std::string::npos) info.name = info.name.substr(dot + 1);
  }
  return types_.emplace(type, std::move(info)).first->second;
}

const std::string& AsyncioReader::code_name(uint64_t code) {
  auto it = code_names_.find(code);
  if (it != code_names_.end()) return it->second;
  if (code_names_.size() >= kMaxCache) code_names_.clear();
  std::string name;
  uint64_t str = 0;
  if (plausible(code) && mem_.read_value(code + l_.co_name, &str)) name = objs_.read_str(str, 256).value_or("");
  return code_names_.emplace(code, name).first->second;
}

// Task names: one readv of every name object; compact ASCII strs and small ints
// (3.12+: "Task-N" counters not yet read by the target) decode locally.
void AsyncioReader::read_names(std::vector<TaskInfo>* tasks, const std::vector<uint64_t>& name_objs) {
  const size_t n = tasks->size();
  std::vector<uint8_t> buf(n * kNameRead);
  std::vector<ReadOp> ops;
  std::vector<size_t> which;
  for (size_t i = 0; i < n; ++i) {
    if (!plausible(name_objs[i])) continue;
    ops.push_back(ReadOp{name_objs[i], &buf[i * kNameRead], kNameRead});
    which.push_back(i);
  }
  readv_merged(&ops);
  for (size_t j = 0; j < ops.size(); ++j) {
    size_t i = which[j];
    const uint8_t* b = &buf[i * kNameRead];
    bool ok = ops[j].ok;
    if (!ok) {  // near the end of a mapping: the header alone
      ok = mem_.read(name_objs[i], buf.data() + i * kNameRead, 32);
      if (!ok) continue;
    }
    Kind k = type_info(field<uint64_t>(b, l_.ob_type)).kind;
    const size_t got = ops[j].ok ? kNameRead : 32;
    std::string& out = (*tasks)[i].name;
    if (k == Kind::kStr) {
      if (!decode_str(b, got, l_, kMaxName, &out)) out = objs_.read_str(name_objs[i], kMaxName).value_or("");
    } else if (k == Kind::kInt) {
      auto v = decode_int(b, got, l_);
      if (v && *v >= 0) out = "Task-" + std::to_string(*v);
    }
  }
  unreadable_names_ = 0;
  for (TaskInfo& t : *tasks) {
    if (clean_name(t.name)) continue;
    t.name = "?";  // a freed or half-written name object reads as empty or control bytes
    ++unreadable_names_;
  }
}

// Follows every task's coroutine through its "yield from" targets, one level for all
// tasks at a time (_PyGen_yf of each version, done from outside). Each object is read
// with the first kStackPeek bytes of its value stack, so the awaited object usually
// comes with it; whether the frame sits in an await is cached per instruction address.
// Await chains change slowly: most coroutines a task awaited last tick still sit at the
// same addresses. Fetching all of last tick's chain objects in one readv turns one
// system call per chain level (FastAPI chains are ~20 deep) into one per tick plus one
// per level where something new appears. The walk checks every link as before: a
// prefetched object is just bytes read a moment earlier in the same tick.
const AsyncioReader::Prefetched* AsyncioReader::prefetched(uint64_t addr) const {
  auto p = std::lower_bound(prefetched_.begin(), prefetched_.end(), Prefetched{addr, 0, 0},
                            [](const Prefetched& a, const Prefetched& b) { return a.addr < b.addr; });
  return p != prefetched_.end() && p->addr == addr ? &*p : nullptr;
}

size_t AsyncioReader::from_prefetch(uint64_t addr, size_t min, size_t max, uint8_t* dst) const {
  const Prefetched* p = prefetched(addr);
  if (!p || p->len < min || p->len > max) return 0;
  std::memcpy(dst, prefetch_buf_.data() + p->offset, p->len);
  return p->len;
}

size_t AsyncioReader::remember_read(uint64_t addr, size_t len) {
  if (chain_reads_next_.size() >= kMaxPrefetch) return SIZE_MAX;
  chain_reads_next_.emplace_back(addr, len);
  return chain_reads_next_.size() - 1;
}

void AsyncioReader::prefetch_before_threads() {
  if (!al_ || al_->coro_frame_object) return;  // <=3.10: frame objects, not inside the coroutines
  prefetch_chains();
  prefetched_early_ = true;
}

const uint8_t* AsyncioReader::frame(uint64_t addr, size_t len) const {
  if (!prefetched_early_ || addr < al_->gen_frame) return nullptr;
  const Prefetched* p = prefetched(addr - al_->gen_frame);
  if (!p || p->len < al_->gen_frame + len) return nullptr;
  return prefetch_buf_.data() + p->offset + al_->gen_frame;
}

void AsyncioReader::prefetch_chains() {
  prefetched_.clear();
  size_t total = 0;
  for (const auto& r : chain_reads_) total += r.second;
  if (chain_reads_.empty() || total > kMaxPrefetchBytes) return;
  prefetch_buf_.resize(total);  // every byte used is overwritten by the read
  std::vector<ReadOp>& ops = prefetch_ops_;
  ops.clear();
  size_t off = 0;
  for (const auto& r : chain_reads_) {
    ops.push_back(ReadOp{r.first, prefetch_buf_.data() + off, r.second});
    off += r.second;
  }
  readv_merged(&ops);
  off = 0;
  for (size_t i = 0; i < ops.size(); ++i) {
    if (ops[i].ok) prefetched_.push_back(Prefetched{chain_reads_[i].first, off, chain_reads_[i].second});
    off += chain_reads_[i].second;
  }
  // Sorted for lookups (a vector, not a map: nothing allocated per object each tick).
  std::stable_sort(prefetched_.begin(), prefetched_.end(),
                   [](const Prefetched& a, const Prefetched& b) { return a.addr < b.addr; });
}

void AsyncioReader::read_chains(std::vector<TaskInfo>* tasks, std::vector<std::pair<uint64_t, uint64_t>>* end,
                                bool remember_running) {
  ChainWalk w;
  w.tasks = tasks;
  w.end = end;
  w.frames.resize(tasks->size());
  end->assign(tasks->size(), {0, 0});
  for (size_t i = 0; i < tasks->size(); ++i) {
    if (plausible((*tasks)[i].coro)) w.cur.push_back(ChainItem{i, (*tasks)[i].coro});
  }
  hits_ = misses_ = 0;
  if (!use_early_) prefetch_chains();
  for (w.depth = 0; w.depth < kMaxChainDepth && !w.cur.empty(); ++w.depth) {
    chain_generators(w);
    if (al_->coro_frame_object) chain_frame_objects(w);
    chain_awaited(w);
    w.cur.swap(w.next);
  }
  for (size_t i = 0; i < tasks->size(); ++i) {
    auto& chain = (*tasks)[i].chain;
    chain.assign(w.frames[i].rbegin(), w.frames[i].rend());  // innermost first
  }
  SPDLOG_DEBUG("await chains: {} objects from the prefetch, {} read level by level", hits_, misses_);
  if (remember_running) remember_running_coroutines();
  chain_reads_.swap(chain_reads_next_);
  chain_reads_next_.clear();
}

// 3.11+: the coroutines on this tick's thread stacks (frames that live in their generator)
// are those of the running tasks; a task seen running is usually suspended a tick later,
// its chain then mostly these same objects. Prefetched next tick, a new task's chain
// costs one read instead of one per level (a FastAPI request's chain is ~20 deep).
void AsyncioReader::remember_running_coroutines() {
  if (!threads_ || al_->coro_frame_object) return;
  const size_t gen_len = al_->gen_frame + l_.fr_size + kStackPeek;
  for (const ThreadSample& t : *threads_)
    for (const RawFrame& f : t.frames)
      if (!f.thread_owned && plausible(f.frame) && f.frame > al_->gen_frame) remember_read(f.frame - al_->gen_frame, gen_len);
}

void AsyncioReader::read_objects(ChainWalk& w, std::vector<uint8_t>* out, size_t len, size_t min) {
  const std::vector<uint64_t>& addrs = w.addrs;
  out->assign(addrs.size() * len, 0);
  w.got.assign(addrs.size(), 0);
  w.remembered.assign(addrs.size(), SIZE_MAX);
  ops_.clear();
  missed_.clear();
  for (size_t j = 0; j < addrs.size(); ++j) {
    if (size_t got = from_prefetch(addrs[j], min, len, out->data() + j * len)) {
      w.got[j] = got;
      w.remembered[j] = remember_read(addrs[j], got);
      ++hits_;
      continue;
    }
    ops_.push_back(ReadOp{addrs[j], out->data() + j * len, len});
    missed_.push_back(j);
    ++misses_;
  }
  readv_merged(&ops_);
  for (size_t m = 0; m < missed_.size(); ++m) {
    size_t j = missed_[m];
    if (ops_[m].ok) {
      w.got[j] = len;
      w.remembered[j] = remember_read(addrs[j], len);
    } else if (min < len && mem_.read(addrs[j], out->data() + j * len, min)) {
      w.got[j] = min;  // an object near the end of its mapping: next time read only min bytes
      w.remembered[j] = remember_read(addrs[j], min);
    }
  }
}

// Next tick, object j is prefetched with only the bytes this tick needed of it (its
// header and frame, and the value stack up to the awaited object): a suspended coroutine
// keeps its stack depth, and copying the whole peek for every chain object of every task
// was most of the prefetch's cost. If it has grown, the awaited object is read on its own.
void AsyncioReader::trim_remembered(const ChainWalk& w, size_t j, size_t need, size_t min, size_t max) {
  size_t idx = w.remembered[j];
  if (idx >= chain_reads_next_.size() || w.got[j] < min) return;
  chain_reads_next_[idx].second = std::min(std::max(need, min), max);
}

namespace {

// The awaited object when it lies inside the len bytes already read (at b) from base.
bool peek(const uint8_t* b, size_t len, uint64_t base, uint64_t addr, uint64_t* v) {
  if (addr < base || addr - base + 8 > len) return false;
  std::memcpy(v, b + (addr - base), 8);
  return true;
}

}  // namespace

// Where a suspended coroutine's frame keeps the object it awaits: the top of its value
// stack (an index up to 3.13, the stackpointer from 3.14), within the generator.
bool AsyncioReader::awaited_address(const uint8_t* f, uint64_t frame, uint64_t* addr) const {
  const uint64_t stack = frame + al_->if_localsplus;
  if (al_->frame_stackpointer) {
    uint64_t sp = field<uint64_t>(f, al_->if_stacktop);
    uint64_t below = 8u * al_->awaited_slot;
    if (sp < stack + below || sp - stack > (uint64_t{1} << 19)) return false;
    *addr = sp - below;
    return true;
  }
  int32_t stacktop = field<int32_t>(f, al_->if_stacktop);
  if (stacktop < 1 || stacktop > (1 << 16)) return false;
  *addr = stack + 8 * static_cast<uint64_t>(stacktop - 1);
  return true;
}

// The coroutines of this level: those that are not (a future, ...) end their chain.
// 3.11+: the generator holds its frame and the start of its value stack, so the frame
// is decoded here; <=3.10 only the frame object's address is taken.
void AsyncioReader::chain_generators(ChainWalk& w) {
  // 3.11+: generator + embedded frame + stack; <=3.10: the generator head, then the frame + stack.
  const bool frame_object = al_->coro_frame_object;
  const size_t gen_len = frame_object ? al_->gen_frame + 8 : al_->gen_frame + l_.fr_size + kStackPeek;
  const size_t gen_min = frame_object ? gen_len : al_->gen_frame + l_.fr_size;
  w.addrs.clear();
  for (const ChainItem& it : w.cur) w.addrs.push_back(it.obj);
  read_objects(w, &w.buf, gen_len, gen_min);
  w.live.clear();
  for (size_t j = 0; j < w.cur.size(); ++j) {
    if (!w.got[j]) continue;
    const uint8_t* g = &w.buf[j * gen_len];
    trim_remembered(w, j, gen_min, gen_min, gen_len);  // unless it is suspended in an await (below)
    uint64_t type = field<uint64_t>(g, l_.ob_type);
    Kind k = type_info(type).kind;
    if (k != Kind::kCoro && k != Kind::kGen) {  // a future, or not a Python coroutine: the chain ends
      (*w.end)[w.cur[j].task] = {w.cur[j].obj, type};
      continue;
    }
    ChainItem it = w.cur[j];
    if (frame_object) {
      it.frame = field<uint64_t>(g, al_->gen_frame);
      if (plausible(it.frame)) w.live.push_back(it);
      continue;
    }
    // 3.11+: state, frame and stack are all here.
    it.frame = it.obj + al_->gen_frame;
    const uint8_t* f = g + al_->gen_frame;
    int8_t state = static_cast<int8_t>(g[al_->gen_frame_state]);
    if (w.depth == 0 && state < al_->state_finished) (*w.tasks)[it.task].coro_frame = it.frame;  // not completed
    bool created = state == al_->state_created;
    bool in_yield_from = al_->state_marks_await && state == al_->state_suspended_yield_from;
    bool suspended = state == al_->state_suspended || in_yield_from;
    if (!created && !suspended) continue;  // executing (its frames are on a thread) or finished
    uint64_t code = l_.code_of(field<uint64_t>(f, l_.fr_code));
    uint64_t instr = field<uint64_t>(f, l_.fr_lasti);
    if (!plausible(code)) continue;
    int32_t offset = -1;
    uint64_t start = code + l_.co_code_adaptive;
    if (!created && instr >= start && instr - start < (1u << 30)) offset = static_cast<int32_t>(instr - start);
    w.frames[it.task].push_back(RawFrame{code, offset, it.frame});
    // 3.13+ marks an await in the state (FRAME_SUSPENDED_YIELD_FROM); 3.11/3.12 in the RESUME after it.
    if (!suspended || (al_->state_marks_await && !in_yield_from)) continue;
    if (!awaited_address(f, it.frame, &it.tos_addr)) continue;
    if (al_->resume_marks_await) it.op_addr = instr + 2;
    if (!peek(g, w.got[j], it.obj, it.tos_addr, &it.tos)) it.tos = 0;
    if (it.tos_addr > it.obj) trim_remembered(w, j, it.tos_addr + 8 - it.obj, gen_min, gen_len);
    w.live.push_back(it);
  }
}

// <=3.10: the frame objects of w.live, with the start of their value stack; keeps those
// suspended where the opcode after f_lasti can say "yield from" (co_code read once per code).
void AsyncioReader::chain_frame_objects(ChainWalk& w) {
  const size_t frame_len = l_.fr_size + kStackPeek;
  w.addrs.clear();
  for (const ChainItem& it : w.live) w.addrs.push_back(it.frame);
  read_objects(w, &w.fbuf, frame_len, l_.fr_size);
  std::vector<ChainItem> susp;
  std::vector<uint64_t> need_code;
  for (size_t j = 0; j < w.live.size(); ++j) {
    if (!w.got[j]) continue;
    ChainItem it = w.live[j];
    const uint8_t* f = &w.fbuf[j * frame_len];
    trim_remembered(w, j, l_.fr_size, l_.fr_size, frame_len);  // unless it is suspended in an await (below)
    if (w.depth == 0) (*w.tasks)[it.task].coro_frame = it.frame;
    uint64_t code = field<uint64_t>(f, l_.fr_code);
    int32_t lasti = field<int32_t>(f, l_.fr_lasti);
    bool created, suspended;
    if (al_->frame_stacktop) {  // f_stacktop is set only while suspended (or not started)
      uint64_t top = field<uint64_t>(f, al_->f_stacktop);
      created = top != 0 && lasti < 0;
      suspended = top != 0 && lasti >= 0;
      it.tos_addr = top - 8;
    } else {
      int8_t st = static_cast<int8_t>(f[al_->f_state]);
      created = st == al_->state_created;
      suspended = st == al_->state_suspended && lasti >= 0;
      int32_t n = field<int32_t>(f, al_->f_stackdepth);
      uint64_t vs = field<uint64_t>(f, al_->f_valuestack);
      if (n >= 1 && n <= (1 << 16)) it.tos_addr = vs + 8 * static_cast<uint64_t>(n - 1);
    }
    if ((!created && !suspended) || !plausible(code) || lasti > (1 << 24)) continue;
    int32_t offset = lasti < 0 ? -1 : lasti * l_.lasti_unit;
    w.frames[it.task].push_back(RawFrame{code, offset, it.frame});
    if (!suspended || !plausible(it.tos_addr)) continue;
    if (!peek(&w.fbuf[j * frame_len], w.got[j], it.frame, it.tos_addr, &it.tos)) it.tos = 0;
    if (it.tos_addr > it.frame) trim_remembered(w, j, it.tos_addr + 8 - it.frame, l_.fr_size, frame_len);
    it.code = code;
    // The opcode after f_lasti (2 bytes on) must be YIELD_FROM (it is re-executed on resume).
    it.op_addr = static_cast<uint64_t>(lasti) * l_.lasti_unit + 2;
    if (!co_code_.count(code)) need_code.push_back(code);
    susp.push_back(it);
  }
  read_co_code(&need_code);
  w.live.clear();
  for (ChainItem& it : susp) {
    uint64_t b = co_code_[it.code];
    if (!plausible(b)) continue;
    it.op_addr += b + l_.bytes_sval;
    w.live.push_back(it);
  }
}

// co_code of code objects not seen before, in one readv.
void AsyncioReader::read_co_code(std::vector<uint64_t>* need_code) {
  std::sort(need_code->begin(), need_code->end());
  need_code->erase(std::unique(need_code->begin(), need_code->end()), need_code->end());
  if (co_code_.size() + need_code->size() > kMaxCache) co_code_.clear();
  std::vector<uint64_t> bytes(need_code->size(), 0);
  ops_.clear();
  for (size_t j = 0; j < need_code->size(); ++j) ops_.push_back(ReadOp{(*need_code)[j] + al_->co_code, &bytes[j], 8});
  readv_merged(&ops_);
  for (size_t j = 0; j < need_code->size(); ++j) co_code_[(*need_code)[j]] = ops_[j].ok ? bytes[j] : 0;
}

// Whatever is still unknown about w.live, in one readv: awaited objects outside the peeked
// bytes (a frame with many locals; that word is prefetched too) and instructions not seen
// before. The awaited objects of frames suspended in an await become w.next.
void AsyncioReader::chain_awaited(ChainWalk& w) {
  if (await_op_.size() > kMaxCache) await_op_.clear();
  const size_t op_len = al_->coro_frame_object ? 1 : 2;  // an opcode byte / a code unit
  ops_.clear();
  for (ChainItem& it : w.live) {
    it.tos_read = !it.tos;
    if (it.tos_read) {
      remember_read(it.tos_addr, 8);
      if (from_prefetch(it.tos_addr, 8, 8, reinterpret_cast<uint8_t*>(&it.tos))) {
        it.tos_read = false;
        ++hits_;
      }
    }
    if (it.tos_read) ops_.push_back(ReadOp{it.tos_addr, &it.tos, 8});
    if (it.op_addr && !await_op_.count(it.op_addr)) ops_.push_back(ReadOp{it.op_addr, &it.op, op_len});
  }
  readv_merged(&ops_);
  w.next.clear();
  size_t o = 0;
  for (ChainItem& it : w.live) {
    bool ok_tos = true;
    if (it.tos_read) ok_tos = ops_[o++].ok;
    bool is_await = true;
    if (it.op_addr) {
      auto c = await_op_.find(it.op_addr);
      if (c != await_op_.end()) {
        is_await = c->second;
      } else {
        bool read_ok = ops_[o++].ok;
        uint8_t opcode = static_cast<uint8_t>(it.op & 0xff), oparg = static_cast<uint8_t>(it.op >> 8);
        is_await = al_->coro_frame_object ? opcode == al_->op_yield_from
                                          : (opcode == al_->op_resume || opcode == al_->op_resume_alt) && oparg >= 2;
        is_await = read_ok && is_await;
        if (read_ok) await_op_.emplace(it.op_addr, is_await);
      }
    }
    it.tos = l_.code_of(it.tos);  // 3.14+: a tagged stack reference
    if (!ok_tos || !is_await || !plausible(it.tos) || it.tos == it.obj) continue;
    if (w.frames[it.task].size() >= kMaxChainDepth) continue;
    w.next.push_back(ChainItem{it.task, it.tos});
  }
}

// Links tasks that wait on a future another task completes through a done callback:
// gather() children (a closure holding the _GatheringFuture), shield() (a closure holding
// the outer future), wait_for() <=3.11 (a partial of _release_waiter) and TaskGroup children
// (a bound method of the group, whose _parent_task owns them). All batched: a few readv.
void AsyncioReader::link_callbacks(std::vector<TaskInfo>* tasks, const std::vector<std::vector<uint64_t>>& callbacks,
                                   const std::unordered_map<uint64_t, size_t>& index) {
  std::unordered_map<uint64_t, size_t> waiter_owner;  // plain future -> the task waiting on it
  for (size_t i = 0; i < tasks->size(); ++i) {
    uint64_t w = (*tasks)[i].fut_waiter;
    if (w && !index.count(w) && (*tasks)[i].awaits.empty()) waiter_owner.emplace(w, i);
  }
  std::vector<bool> awaited(tasks->size(), false);
  for (const TaskInfo& t : *tasks) {
    for (size_t j : t.awaits) awaited[j] = true;
  }
  std::vector<Held> cbs;
  for (size_t i = 0; i < tasks->size(); ++i) {
    if (awaited[i] || (*tasks)[i].state != TaskState::kPending) continue;
    for (uint64_t cb : callbacks[i]) cbs.push_back(Held{i, cb});
  }
  if (cbs.empty()) return;
  std::vector<Held> refs, selves;
  callback_holdings(cbs, &refs, &selves);
  auto link = [&](size_t waiter, size_t child) { add_await(tasks, waiter, child); };
  for (const Held& r : refs) {
    auto w = waiter_owner.find(r.obj);
    if (w != waiter_owner.end()) link(w->second, r.task);
  }
  // TaskGroup._on_task_done bound to the group: the group's _parent_task owns the child.
  std::unordered_map<uint64_t, int64_t> parents;
  for (const Held& s : selves) {
    if (!plausible(s.obj) || index.count(s.obj)) continue;
    auto p = parents.find(s.obj);
    if (p == parents.end()) {
      int64_t parent = -1;
      if (parents.size() < 1024) {
        auto pt = objs_.instance_attr(s.obj, "_parent_task");
        auto it = pt ? index.find(*pt) : index.end();
        if (it != index.end()) parent = static_cast<int64_t>(it->second);
      }
      p = parents.emplace(s.obj, parent).first;
    }
    if (p->second >= 0 && (*tasks)[p->second].state == TaskState::kPending) link(p->second, s.task);
  }
  link_frame_owners(tasks, refs, selves, waiter_owner);
}

// What callables hold: partial args and closure cell contents (refs), bound methods'
// selves (selves), each with the task of the callable it came from.
void AsyncioReader::callback_holdings(const std::vector<Held>& cbs, std::vector<Held>* refs, std::vector<Held>* selves) {
  std::vector<uint8_t> buf(cbs.size() * kCallbackRead);
  std::vector<ReadOp> ops;
  for (size_t j = 0; j < cbs.size(); ++j) ops.push_back(ReadOp{cbs[j].obj, &buf[j * kCallbackRead], kCallbackRead});
  readv_merged(&ops);
  std::vector<Held> tuples;
  for (size_t j = 0; j < cbs.size(); ++j) {
    if (!ops[j].ok) continue;
    const uint8_t* b = &buf[j * kCallbackRead];
    switch (type_info(field<uint64_t>(b, l_.ob_type)).kind) {
      case Kind::kPartial: tuples.push_back(Held{cbs[j].task, field<uint64_t>(b, al_->partial_args)}); break;
      case Kind::kFunction: tuples.push_back(Held{cbs[j].task, field<uint64_t>(b, al_->func_closure)}); break;
      case Kind::kMethod: selves->push_back(Held{cbs[j].task, field<uint64_t>(b, al_->method_self)}); break;
      default: break;
    }
  }
  // Tuple items (partial args, closure cells), one readv.
  std::vector<uint8_t> tbuf(tuples.size() * kTupleRead);
  ops.clear();
  std::vector<size_t> tix;
  for (size_t j = 0; j < tuples.size(); ++j) {
    if (!plausible(tuples[j].obj)) continue;
    ops.push_back(ReadOp{tuples[j].obj, &tbuf[j * kTupleRead], kTupleRead});
    tix.push_back(j);
  }
  readv_merged(&ops);
  std::vector<Held> maybe_cells;
  for (size_t o = 0; o < ops.size(); ++o) {
    if (!ops[o].ok) continue;
    size_t j = tix[o];
    const uint8_t* b = &tbuf[j * kTupleRead];
    if (type_info(field<uint64_t>(b, l_.ob_type)).kind != Kind::kTuple) continue;
    int64_t n = std::min<int64_t>(field<int64_t>(b, l_.var_size), (kTupleRead - l_.tuple_items) / 8);
    for (int64_t k = 0; k < n; ++k) {
      uint64_t item = field<uint64_t>(b, l_.tuple_items + 8 * k);
      if (plausible(item)) maybe_cells.push_back(Held{tuples[j].task, item});
    }
  }
  // Cells hold their content at cell_ref; anything else is taken as is.
  std::vector<uint8_t> cbuf(maybe_cells.size() * 24);
  ops.clear();
  for (size_t j = 0; j < maybe_cells.size(); ++j) ops.push_back(ReadOp{maybe_cells[j].obj, &cbuf[j * 24], 24});
  readv_merged(&ops);
  for (size_t j = 0; j < maybe_cells.size(); ++j) {
    if (!ops[j].ok) continue;
    const uint8_t* b = &cbuf[j * 24];
    if (type_info(field<uint64_t>(b, l_.ob_type)).kind == Kind::kCell) {
      refs->push_back(Held{maybe_cells[j].task, field<uint64_t>(b, al_->cell_ref)});
    } else {
      refs->push_back(maybe_cells[j]);
    }
  }
}

namespace {

std::unordered_map<uint64_t, size_t> index_of(const std::vector<TaskInfo>& tasks) {
  std::unordered_map<uint64_t, size_t> index;
  for (size_t i = 0; i < tasks.size(); ++i) index.emplace(tasks[i].addr, i);
  return index;
}

}  // namespace

bool AsyncioReader::read_tasks(std::vector<TaskInfo>* tasks, const std::vector<ThreadSample>* threads, TaskScope scope) {
  threads_ = threads;
  tasks->clear();
  invalid_ = 0;
  use_early_ = std::exchange(prefetched_early_, false);
  int r = resolve();
  if (r <= 0) return true;  // asyncio not imported, or no layout for this version (logged once)
  std::vector<uint64_t> objs;
  if (!registry_objects(&objs)) return false;
  std::vector<uint64_t> names;
  std::vector<std::vector<uint64_t>> callbacks;
  decode_tasks(objs, tasks, &names, &callbacks);
  const bool running_only = scope == TaskScope::kRunning;
  if (running_only) {  // which tasks run is known before any chain is read
    const std::unordered_map<uint64_t, size_t> all = index_of(*tasks);
    mark_running(tasks, all);
    keep_running_lines(tasks, &names, &callbacks, all);
  }
  read_names(tasks, names);
  std::vector<std::pair<uint64_t, uint64_t>> chain_end;
  read_chains(tasks, &chain_end, !running_only);
  const std::unordered_map<uint64_t, size_t> index = index_of(*tasks);
  link_waiters(tasks, chain_end, index);
  link_awaited_by(tasks, index);
  link_callbacks(tasks, callbacks, index);
  if (!running_only) mark_running(tasks, index);
  return true;
}

// 3.14+: the thread states of the interpreter, newest first (bounded, cycles cut).
void AsyncioReader::thread_states(std::vector<uint64_t>* out) {
  out->clear();
  if (threads_) {  // the sampler's list of this tick, in the same order
    for (const ThreadSample& t : *threads_) out->push_back(t.ts.addr);
    return;
  }
  uint64_t ts = 0;
  if (!mem_.read_value(interp_ + l_.is_threads_head, &ts)) return;
  while (plausible(ts) && out->size() < ThreadReader::kMaxThreads &&
         std::find(out->begin(), out->end(), ts) == out->end()) {
    out->push_back(ts);
    if (!mem_.read_value(ts + l_.ts_next, &ts)) break;
  }
}

// 3.14+: the tasks of one circular list whose sentinel node is at head: node - task_node.
void AsyncioReader::list_tasks(uint64_t head, std::vector<uint64_t>* out) {
  uint64_t node = 0;
  if (!next_node(head, &node)) return;
  for (size_t n = 0; node != head && plausible(node) && n < kMaxTasks; ++n) {
    out->push_back(node - al_->task_node);
    if (nodes_.size() < kMaxTasks) nodes_.push_back(node);
    if (!next_node(node, &node)) return;
  }
}

// A list node's next (llist_node.next is its first field): from this tick's batch, else read.
bool AsyncioReader::next_node(uint64_t node, uint64_t* next) {
  auto it = next_of_.find(node);
  if (it == next_of_.end()) return mem_.read_value(node, next);
  *next = it->second;
  return true;
}

// 3.14+: every thread's C tasks, then those of threads that have finished. The heads and
// the nodes the last walk saw are read in one readv; only new nodes are read singly.
void AsyncioReader::listed_tasks(std::vector<uint64_t>* out) {
  thread_states(&tstates_);
  std::vector<uint64_t> addrs;
  for (uint64_t ts : tstates_) addrs.push_back(ts + al_->tstate_tasks_head);
  addrs.push_back(interp_ + al_->interp_tasks_head);
  const size_t n_heads = addrs.size();
  addrs.insert(addrs.end(), nodes_.begin(), nodes_.end());
  std::vector<uint64_t> vals(addrs.size(), 0);
  std::vector<ReadOp> ops;
  for (size_t i = 0; i < addrs.size(); ++i) ops.push_back(ReadOp{addrs[i], &vals[i], 8});
  readv_merged(&ops);
  next_of_.clear();
  for (size_t i = 0; i < addrs.size(); ++i)
    if (ops[i].ok) next_of_[addrs[i]] = vals[i];
  nodes_.clear();
  for (size_t i = 0; i < n_heads; ++i) list_tasks(addrs[i], out);
}

// Registry keys: weak references (<=3.11 _all_tasks, 3.12+ _scheduled_tasks) and eager
// tasks; the objects they name, each once.
bool AsyncioReader::registry_objects(std::vector<uint64_t>* objs) {
  std::vector<uint64_t> refs, candidates;
  if (!objs_.set_items(reg_.all_tasks, &refs, 4 * kMaxTasks)) return false;
  std::vector<uint8_t> buf(refs.size() * 24);
  std::vector<ReadOp> ops;
  for (size_t i = 0; i < refs.size(); ++i) ops.push_back(ReadOp{refs[i], &buf[i * 24], 24});
  readv_merged(&ops);
  for (size_t i = 0; i < refs.size(); ++i) {
    if (!ops[i].ok || type_info(field<uint64_t>(&buf[i * 24], l_.ob_type)).kind != Kind::kWeakref) continue;
    uint64_t obj = field<uint64_t>(&buf[i * 24], al_->weakref_object);
    if (plausible(obj)) candidates.push_back(obj);
  }
  if (reg_.eager_tasks) objs_.set_items(reg_.eager_tasks, &candidates, 4 * kMaxTasks);
  if (al_->task_node) listed_tasks(&candidates);
  std::unordered_set<uint64_t> seen;
  for (uint64_t c : candidates) {
    if (objs->size() >= kMaxTasks) break;
    if (seen.insert(c).second) objs->push_back(c);
  }
  return true;
}

// The task objects, one readv; pure-Python tasks read their attributes one by one.
void AsyncioReader::decode_tasks(const std::vector<uint64_t>& objs, std::vector<TaskInfo>* tasks,
                                 std::vector<uint64_t>* names, std::vector<std::vector<uint64_t>>* callbacks) {
  const size_t ts = std::max<size_t>(al_->task_size, 32);
  std::vector<uint8_t> buf(objs.size() * ts, 0);
  std::vector<ReadOp> ops;
  for (size_t i = 0; i < objs.size(); ++i) ops.push_back(ReadOp{objs[i], &buf[i * ts], ts});
  readv_merged(&ops);
  for (size_t i = 0; i < objs.size(); ++i) {
    uint8_t* b = &buf[i * ts];
    if (!ops[i].ok && !mem_.read(objs[i], b, 32)) {  // a small object at the end of a mapping
      ++invalid_;
      continue;
    }
    Kind k = type_info(field<uint64_t>(b, l_.ob_type)).kind;
    TaskInfo t;
    t.addr = objs[i];
    uint64_t name = 0;
    std::vector<uint64_t> cbs;
    bool ok;
    if (k == Kind::kCTask && ops[i].ok) {
      ok = decode_c_task(b, &t, &name, &cbs);
    } else if (k == Kind::kPyTask) {
      ok = decode_py_task(&t, &name, &cbs);
    } else {
      if (k != Kind::kNone) ++invalid_;  // dead weak references point at None
      continue;
    }
    if (!ok || (t.state == TaskState::kPending && (!plausible(t.coro) || !plausible(t.loop)))) {
      ++invalid_;  // half-built or torn
      continue;
    }
    if (t.state != TaskState::kPending) t.fut_waiter = 0;
    tasks->push_back(std::move(t));
    names->push_back(name);
    callbacks->push_back(std::move(cbs));
  }
}

bool AsyncioReader::decode_c_task(const uint8_t* b, TaskInfo* t, uint64_t* name, std::vector<uint64_t>* cbs) {
  int32_t state = field<int32_t>(b, al_->fut_state);
  if (state < 0 || state > 2) return false;
  t->state = state == 0 ? TaskState::kPending : state == 1 ? TaskState::kCancelled : TaskState::kDone;
  t->loop = field<uint64_t>(b, al_->fut_loop);
  t->coro = field<uint64_t>(b, al_->task_coro);
  t->fut_waiter = field<uint64_t>(b, al_->task_fut_waiter);
  *name = field<uint64_t>(b, al_->task_name);
  if (al_->task_awaited_by) {
    t->awaited_by = field<uint64_t>(b, al_->task_awaited_by);
    t->awaited_by_set = b[al_->task_awaited_by_is_set] != 0;
  }
  uint64_t cb0 = field<uint64_t>(b, al_->fut_callback0);
  if (plausible(cb0)) cbs->push_back(cb0);
  uint64_t more = field<uint64_t>(b, al_->fut_callbacks);
  if (t->state == TaskState::kPending && plausible(more)) callback_funcs(more, cbs);
  return true;
}

bool AsyncioReader::decode_py_task(TaskInfo* t, uint64_t* name, std::vector<uint64_t>* cbs) {
  // _state stays the class attribute (PENDING) until the future completes.
  auto state = objs_.instance_attr(t->addr, "_state");
  std::string s = state ? objs_.read_str(*state, 16).value_or("") : "PENDING";
  t->coro = objs_.instance_attr(t->addr, "_coro").value_or(0);
  if (s == "PENDING") t->state = TaskState::kPending;
  else if (s == "FINISHED") t->state = TaskState::kDone;
  else if (s == "CANCELLED") t->state = TaskState::kCancelled;
  else return false;
  if (!t->coro) return false;
  t->loop = objs_.instance_attr(t->addr, "_loop").value_or(0);
  t->fut_waiter = objs_.instance_attr(t->addr, "_fut_waiter").value_or(0);
  *name = objs_.instance_attr(t->addr, "_name").value_or(0);
  auto list = t->state == TaskState::kPending ? objs_.instance_attr(t->addr, "_callbacks") : std::nullopt;
  if (list) callback_funcs(*list, cbs);
  return true;
}

void AsyncioReader::callback_funcs(uint64_t list, std::vector<uint64_t>* cbs) {
  std::vector<uint64_t> pairs;
  if (!objs_.sequence_items(list, &pairs, 16)) return;
  for (uint64_t p : pairs) {
    std::vector<uint64_t> pair;
    if (objs_.sequence_items(p, &pair, 1) && !pair.empty()) cbs->push_back(pair[0]);
  }
}

// Waiter types: usually known from the end of the task's chain (the awaited future was read there).
void AsyncioReader::link_waiters(std::vector<TaskInfo>* tasks, const std::vector<std::pair<uint64_t, uint64_t>>& chain_end,
                                 const std::unordered_map<uint64_t, size_t>& index) {
  std::unordered_map<uint64_t, uint64_t> wtype;  // waiter -> its type (0: unreadable)
  std::vector<uint64_t> unknown;
  for (size_t i = 0; i < tasks->size(); ++i) {
    uint64_t w = (*tasks)[i].fut_waiter;
    if (!plausible(w) || index.count(w)) continue;
    if (chain_end[i].first == w) wtype[w] = chain_end[i].second;
    else if (!wtype.count(w)) wtype[w] = 0, unknown.push_back(w);
  }
  std::vector<uint64_t> utypes(unknown.size(), 0);
  std::vector<ReadOp> ops;
  for (size_t i = 0; i < unknown.size(); ++i) ops.push_back(ReadOp{unknown[i] + l_.ob_type, &utypes[i], 8});
  readv_merged(&ops);
  for (size_t i = 0; i < unknown.size(); ++i) wtype[unknown[i]] = ops[i].ok ? utypes[i] : 0;
  for (TaskInfo& t : *tasks) {
    if (!t.fut_waiter) continue;
    auto self = index.find(t.fut_waiter);
    if (self != index.end()) {
      t.awaits.push_back(self->second);
      t.awaiting = (*tasks)[self->second].name;
      continue;
    }
    auto w = wtype.find(t.fut_waiter);
    if (w == wtype.end() || !w->second) continue;
    const TypeInfo ti = type_info(w->second);
    if (ti.kind == Kind::kNone) {  // a pure-Python task's _fut_waiter = None
      t.fut_waiter = 0;
    } else if (ti.kind == Kind::kGathering) {  // its children are linked through their callbacks
      t.awaiting = "gather";
    } else if (!t.chain.empty() && code_name(t.chain.front().code) == "sleep") {
      t.awaiting = "sleep";
    } else {
      t.awaiting = ti.name.empty() ? "Future" : ti.name;
    }
  }
}

void AsyncioReader::mark_running(std::vector<TaskInfo>* tasks, const std::unordered_map<uint64_t, size_t>& index) {
  // 3.14+: a C task's loop records it in its thread's state, not in _current_tasks.
  if (al_->tstate_running_task) {  // one readv for all threads
    std::vector<uint64_t> running(tstates_.size(), 0);
    std::vector<ReadOp> ops;
    for (size_t i = 0; i < tstates_.size(); ++i)
      ops.push_back(ReadOp{tstates_[i] + al_->tstate_running_task, &running[i], 8});
    readv_merged(&ops);
    for (size_t i = 0; i < tstates_.size(); ++i) {
      auto it = ops[i].ok ? index.find(running[i]) : index.end();
      if (it != index.end()) (*tasks)[it->second].running = true;
    }
  }
  std::vector<std::pair<uint64_t, uint64_t>> current;
  if (!plausible(reg_.current_tasks) || !objs_.dict_items(reg_.current_tasks, &current, 1024)) return;
  for (auto& kv : current) {
    auto it = index.find(kv.second);
    if (it != index.end()) (*tasks)[it->second].running = true;
  }
}

}  // namespace pyprofd
