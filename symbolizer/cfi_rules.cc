#include "symbolizer/cfi_rules.h"

#include <dwarf.h>
#include <elfutils/libdw.h>
#include <elfutils/libdwfl.h>

#include <cstdlib>

namespace pyprofd {

namespace {

constexpr int kRsp = 7, kRbp = 6;

// "CFA = reg + offset": a single DW_OP_bregN.
bool cfa_rule(Dwarf_Frame* frame, CfiRule* out) {
  Dwarf_Op* ops = nullptr;
  size_t n = 0;
  if (dwarf_frame_cfa(frame, &ops, &n) != 0 || n != 1 || !ops) return false;
  int reg = ops[0].atom >= DW_OP_breg0 && ops[0].atom <= DW_OP_breg31 ? ops[0].atom - DW_OP_breg0 : -1;
  if (ops[0].atom == DW_OP_bregx) reg = static_cast<int>(ops[0].number);
  if (reg != kRsp && reg != kRbp) return false;
  out->cfa_reg = static_cast<uint8_t>(reg);
  out->cfa_offset = static_cast<int64_t>(ops[0].atom == DW_OP_bregx ? ops[0].number2 : ops[0].number);
  return true;
}

// A register saved at CFA + offset, unchanged, or undefined; false for other rules.
bool saved_rule(Dwarf_Frame* frame, int reg, CfiRule::Saved* kind, int64_t* offset) {
  Dwarf_Op mem[3];
  Dwarf_Op* ops = nullptr;
  size_t n = 0;
  if (dwarf_frame_register(frame, reg, mem, &ops, &n) != 0) return false;
  if (n == 0) {
    *kind = ops ? CfiRule::kUndefined : CfiRule::kSame;
    return true;
  }
  if (ops[0].atom != DW_OP_call_frame_cfa) return false;
  if (n == 1) {
    *kind = CfiRule::kAtCfa;
    *offset = 0;
    return true;
  }
  if (n != 2 || ops[1].atom != DW_OP_plus_uconst) return false;  // DW_OP_stack_value: a value, not a slot
  *kind = CfiRule::kAtCfa;
  *offset = static_cast<int64_t>(ops[1].number);
  return true;
}

}  // namespace

bool CfiRules::compute(Dwfl* dwfl, uint64_t pc, CfiRule* out) {
  Dwfl_Module* mod = dwfl_addrmodule(dwfl, pc);
  Dwarf_Addr bias = 0;
  Dwarf_CFI* cfi = mod ? dwfl_module_eh_cfi(mod, &bias) : nullptr;
  Dwarf_Frame* frame = nullptr;
  if (!cfi || dwarf_cfi_addrframe(cfi, pc - bias, &frame) != 0 || !frame) return false;
  Dwarf_Addr start = 0, end = 0;
  bool signal = false;
  int ra_reg = dwarf_frame_info(frame, &start, &end, &signal);
  bool ok = ra_reg == 16 && !signal && cfa_rule(frame, out) &&
            saved_rule(frame, ra_reg, &out->ra, &out->ra_offset) && out->ra != CfiRule::kSame &&
            saved_rule(frame, kRbp, &out->bp, &out->bp_offset);
  free(frame);
  return ok;
}

const CfiRule* CfiRules::at(Dwfl* dwfl, uint64_t pc) {
  auto it = rules_.find(pc);
  if (it == rules_.end()) {
    if (rules_.size() >= kMaxRules) rules_.clear();
    Entry e;
    e.ok = compute(dwfl, pc, &e.rule);
    it = rules_.emplace(pc, e).first;
  }
  return it->second.ok ? &it->second.rule : nullptr;
}

}  // namespace pyprofd
