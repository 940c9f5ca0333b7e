#include "symbolizer/native_unwinder.h"

#include <elfutils/libdwfl.h>

#include <cstring>

#include "symbolizer/elf_image.h"

namespace pyprofd {

// What the callbacks read while one unwind runs.
struct NativeUnwinder::Current {
  const NativeRegs* regs = nullptr;
  const StackCopy* stack = nullptr;
  NativeUnwind* out = nullptr;
  size_t max_depth = 0;
  bool outside = false;  // the unwinder asked for memory beyond the copy: the stack is cut there
};

namespace {

char* debuginfo_path = nullptr;  // libdwfl's default search: .gnu_debuglink, /usr/lib/debug/.build-id
const Dwfl_Callbacks kCallbacks = {
    dwfl_build_id_find_elf,
    dwfl_standard_find_debuginfo,
    dwfl_offline_section_address,
    &debuginfo_path,
};

pid_t next_thread(Dwfl*, void* arg, void** thread_arg) {
  // dwfl_getthread_frames asks for its thread by get_thread; nothing to enumerate.
  return 0;
}

bool get_thread(Dwfl*, pid_t, void* arg, void** thread_arg) {
  *thread_arg = arg;
  return true;
}

// Memory the unwinder asks for: only the stack copy exists (the files are libdwfl's own).
bool memory_read(Dwfl*, Dwarf_Addr addr, Dwarf_Word* result, void* arg) {
  auto* cur = static_cast<NativeUnwinder::Current*>(arg);
  const StackCopy& s = *cur->stack;
  if (addr < s.addr || addr - s.addr > s.bytes.size() || s.bytes.size() - (addr - s.addr) < sizeof(uint64_t)) {
    cur->outside = true;
    return false;
  }
  std::memcpy(result, s.bytes.data() + (addr - s.addr), sizeof(uint64_t));
  return true;
}

bool set_initial_registers(Dwfl_Thread* thread, void* arg) {
  auto* cur = static_cast<NativeUnwinder::Current*>(arg);
  const NativeRegs& r = *cur->regs;
  if (!(r.known & (1u << kDwarfIp)) || !(r.known & (1u << kDwarfSp))) return false;
  for (int i = 0; i < kDwarfIp; ++i) {
    if (!(r.known & (1u << i))) continue;
    Dwarf_Word v = r.r[i];
    if (!dwfl_thread_state_registers(thread, i, 1, &v)) return false;
  }
  dwfl_thread_state_register_pc(thread, r.r[kDwarfIp]);
  return true;
}

const Dwfl_Thread_Callbacks kThreadCallbacks = {
    next_thread, get_thread, memory_read, set_initial_registers, nullptr, nullptr,
};

int on_frame(Dwfl_Frame* frame, void* arg) {
  auto* cur = static_cast<NativeUnwinder::Current*>(arg);
  Dwarf_Addr pc = 0;
  bool activation = false;
  if (!dwfl_frame_pc(frame, &pc, &activation)) return DWARF_CB_ABORT;
  cur->out->pcs.push_back(pc);
  Dwarf_Word sp = 0;
  cur->out->sps.push_back(dwfl_frame_reg(frame, kDwarfSp, &sp) == 0 ? sp : 0);
  return cur->out->pcs.size() >= cur->max_depth ? DWARF_CB_ABORT : DWARF_CB_OK;
}

}  // namespace

NativeUnwinder::NativeUnwinder(int pid, std::string root)
    : pid_(pid), root_(std::move(root)), dwfl_(dwfl_begin(&kCallbacks)), cur_(std::make_unique<Current>()) {}

NativeUnwinder::~NativeUnwinder() {
  if (dwfl_) dwfl_end(dwfl_);
}

void NativeUnwinder::set_mappings(const std::vector<NativeMapping>& maps) {
  if (!dwfl_) return;
  bool same = maps.size() == maps_.size();
  for (size_t i = 0; same && i < maps.size(); ++i)
    same = maps[i].start == maps_[i].start && maps[i].end == maps_[i].end && maps[i].path == maps_[i].path;
  if (same) return;
  maps_ = maps;
  by_pc_.clear();  // a library may have moved
  rules_.clear();
  // A fresh session per change: re-reporting into the old one lost modules reported
  // before (seen when a launched interpreter mapped its libraries after the first look).
  // Names stay cached by build-id, so only the files are opened again.
  dwfl_end(dwfl_);
  dwfl_ = dwfl_begin(&kCallbacks);
  attached_ = false;
  if (!dwfl_) return;
  dwfl_report_begin(dwfl_);
  std::string last;
  for (const auto& m : maps_) {
    if (m.path.empty() || m.path[0] != '/' || m.path == last) continue;
    last = m.path;
    // The load bias from the file's program headers and this mapping; a file that cannot
    // be opened (deleted, unreadable) is left out and its frames stay unnamed.
    std::string file = root_ + m.path;
    auto img = ElfImage::open(file, nullptr);
    if (!img) continue;
    auto bias = img->load_bias(m.start, m.offset);
    if (!bias) continue;
    dwfl_report_elf(dwfl_, m.path.c_str(), file.c_str(), -1, img->is_pie_or_shared() ? *bias : 0, true);
  }
  dwfl_report_end(dwfl_, nullptr, nullptr);
  attached_ = dwfl_attach_state(dwfl_, nullptr, pid_, &kThreadCallbacks, cur_.get());
}

bool NativeUnwinder::executable(uint64_t addr) const {
  for (const auto& m : maps_)
    if (addr >= m.start && addr < m.end) return true;
  return false;
}

NativeUnwind NativeUnwinder::unwind(const NativeRegs& regs, const StackCopy& stack, size_t max_depth) {
  NativeUnwind out = unwind_once(regs, stack, max_depth);
  if ((regs.known & (1u << kDwarfBp)) || out.pcs.empty() || out.pcs.size() >= max_depth || out.sps.back() < stack.addr)
    return out;
  // The first [saved rbp, return address] pair at or above the last frame's stack pointer:
  // a saved rbp of 0 (outermost) or higher up the stack, a return address into mapped code.
  const size_t n = stack.bytes.size() / 8;
  for (size_t i = (out.sps.back() - stack.addr) / 8; i + 1 < n && i < (out.sps.back() - stack.addr) / 8 + 4096; ++i) {
    uint64_t slot[2];
    std::memcpy(slot, stack.bytes.data() + i * 8, sizeof slot);
    uint64_t at = stack.addr + i * 8;
    if (!executable(slot[1]) || (slot[0] && (slot[0] <= at || slot[0] >= stack.addr + stack.bytes.size()))) continue;
    NativeRegs with_fp = regs;
    with_fp.r[kDwarfBp] = at;
    with_fp.known |= 1u << kDwarfBp;
    NativeUnwind again = unwind_once(with_fp, stack, max_depth);
    if (again.pcs.size() > out.pcs.size()) out = std::move(again);
    break;
  }
  return out;
}

// Frame by frame from the cached rules, reading only the stack copy. False (and libdwfl
// does the whole stack) at the first frame it cannot do exactly as libdwfl would: no rule
// of the common shape, a CFA on an unknown rbp or not above the last, a slot outside the
// copy (libdwfl then tries frame pointers).
bool NativeUnwinder::unwind_by_rules(const NativeRegs& regs, const StackCopy& stack, size_t max_depth,
                                     NativeUnwind* out) {
  if (!(regs.known & (1u << kDwarfIp)) || !(regs.known & (1u << kDwarfSp))) return false;
  uint64_t pc = regs.r[kDwarfIp], sp = regs.r[kDwarfSp], bp = regs.r[kDwarfBp];
  bool bp_known = regs.known & (1u << kDwarfBp);
  auto slot = [&stack](uint64_t addr, uint64_t* v) {
    if (addr < stack.addr || addr - stack.addr > stack.bytes.size() || stack.bytes.size() - (addr - stack.addr) < 8)
      return false;
    std::memcpy(v, stack.bytes.data() + (addr - stack.addr), 8);
    return true;
  };
  for (size_t depth = 0;; ++depth) {
    out->pcs.push_back(pc);
    out->sps.push_back(sp);
    if (out->pcs.size() >= max_depth) return true;  // cut, as on_frame's abort
    const CfiRule* r = rules_.at(dwfl_, depth == 0 ? pc : pc - 1);  // a return address is past its call
    if (!r || (r->cfa_reg == kDwarfBp && !bp_known)) return false;
    uint64_t cfa = (r->cfa_reg == kDwarfSp ? sp : bp) + static_cast<uint64_t>(r->cfa_offset);
    uint64_t ra = 0;
    if (r->ra == CfiRule::kUndefined) {  // the outermost frame
      out->complete = true;
      return true;
    }
    if (cfa <= sp || !slot(cfa + static_cast<uint64_t>(r->ra_offset), &ra)) return false;
    if (r->bp == CfiRule::kAtCfa && !slot(cfa + static_cast<uint64_t>(r->bp_offset), &bp)) return false;
    bp_known = r->bp == CfiRule::kAtCfa || (bp_known && r->bp == CfiRule::kSame);
    if (ra == 0) return false;  // how libdwfl ends such a stack is its own business
    sp = cfa;
    pc = ra;
  }
}

NativeUnwind NativeUnwinder::unwind_once(const NativeRegs& regs, const StackCopy& stack, size_t max_depth) {
  NativeUnwind out;
  if (!attached_) return out;
  if (use_rules_ && max_depth > 0) {
    if (unwind_by_rules(regs, stack, max_depth, &out)) {
      ++by_rules_;
      return out;
    }
    out = NativeUnwind{};
  }
  ++by_libdwfl_;
  cur_->regs = &regs;
  cur_->stack = &stack;
  cur_->out = &out;
  cur_->max_depth = max_depth;
  cur_->outside = false;
  int rc = dwfl_getthread_frames(dwfl_, pid_, on_frame, cur_.get());
  out.complete = rc == 0 && !cur_->outside;
  cur_->regs = nullptr;
  cur_->stack = nullptr;
  cur_->out = nullptr;
  return out;
}

}  // namespace pyprofd
