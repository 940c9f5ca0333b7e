// NativeUnwinder::symbolize: names for pcs, cached by (build-id, offset in the module).
#include <cxxabi.h>
#include <elfutils/libdwfl.h>
#include <gelf.h>

#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <unordered_map>

#include "symbolizer/native_unwinder.h"

namespace pyprofd {

namespace {

// Shared by every unwinder: subprocesses map the same libpython, libc, ...
struct SymbolCache {
  std::mutex mu;
  std::map<std::string, std::unordered_map<uint64_t, NativeSymbol>> by_module;  // build-id (or path) -> offset
};
SymbolCache& cache() {
  static SymbolCache c;
  return c;
}

std::string demangle(const char* name) {
  if (name[0] != '_' || name[1] != 'Z') return name;
  int status = 0;
  char* d = abi::__cxa_demangle(name, nullptr, nullptr, &status);
  if (status != 0 || !d) return name;
  std::string out(d);
  std::free(d);
  return out;
}

std::string module_key(Dwfl_Module* mod, const char* name) {
  const unsigned char* bits = nullptr;
  GElf_Addr vaddr = 0;
  int n = dwfl_module_build_id(mod, &bits, &vaddr);
  if (n <= 0 || !bits) return std::string("path:") + (name ? name : "");
  static const char kHex[] = "0123456789abcdef";
  std::string key;
  for (int i = 0; i < n; ++i) {
    key += kHex[bits[i] >> 4];
    key += kHex[bits[i] & 15];
  }
  return key;
}

// DT_SONAME ("libz.so.1" for libz.so.1.2.13, the name programs link by); "" if none.
std::string soname(Dwfl_Module* mod) {
  GElf_Addr bias = 0;
  Elf* elf = dwfl_module_getelf(mod, &bias);
  Elf_Scn* scn = nullptr;
  while (elf && (scn = elf_nextscn(elf, scn)) != nullptr) {
    GElf_Shdr sh;
    if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_DYNAMIC || !sh.sh_entsize) continue;
    Elf_Data* data = elf_getdata(scn, nullptr);
    for (size_t i = 0; data && i < sh.sh_size / sh.sh_entsize && i < 4096; ++i) {
      GElf_Dyn dyn;
      if (!gelf_getdyn(data, static_cast<int>(i), &dyn)) break;
      if (dyn.d_tag != DT_SONAME) continue;
      const char* name = elf_strptr(elf, sh.sh_link, dyn.d_un.d_val);
      return name ? name : "";
    }
  }
  return "";
}

std::string base_name(const char* path) {
  if (!path) return "";
  const char* slash = std::strrchr(path, '/');
  return slash ? slash + 1 : path;
}

// Without a symbol, the start of the function's CFI entry (FDE) stands for it, so every
// address of one unnamed function is one name ("libz.so.1+0x5d90"). Offset from the
// module's start; the address's own offset if no CFI covers it.
uint64_t unnamed_offset(Dwfl_Module* mod, Dwarf_Addr addr, Dwarf_Addr mod_start) {
  Dwarf_Addr bias = 0;
  Dwarf_CFI* cfi = dwfl_module_eh_cfi(mod, &bias);
  Dwarf_Frame* frame = nullptr;
  if (!cfi || dwarf_cfi_addrframe(cfi, addr - bias, &frame) != 0) return addr - mod_start;
  Dwarf_Addr start = 0, end = 0;
  bool ok = dwarf_frame_info(frame, &start, &end, nullptr) >= 0 && start + bias <= addr && start + bias >= mod_start;
  std::free(frame);
  return ok ? start + bias - mod_start : addr - mod_start;
}

NativeSymbol lookup(Dwfl_Module* mod, const char* mod_name, Dwarf_Addr addr, Dwarf_Addr mod_start) {
  NativeSymbol s;
  s.library = soname(mod);
  if (s.library.empty()) s.library = base_name(mod_name);
  GElf_Off off = 0;
  GElf_Sym sym;
  const char* name = dwfl_module_addrinfo(mod, addr, &off, &sym, nullptr, nullptr, nullptr);
  if (name && *name) {
    s.function = demangle(name);
    // "clock_nanosleep@GLIBC_2.2.5": the symbol version is not part of the name.
    size_t at = s.function.find('@');
    if (at != std::string::npos && at > 0) s.function.resize(at);
  }
  if (Dwfl_Line* line = dwfl_module_getsrc(mod, addr)) {
    int lineno = 0;
    const char* file = dwfl_lineinfo(line, nullptr, &lineno, nullptr, nullptr, nullptr);
    if (file) {
      s.file = file;
      s.line = lineno;
    }
  }
  s.offset = s.function.empty() ? unnamed_offset(mod, addr, mod_start) : addr - mod_start;
  return s;
}

}  // namespace

const NativeSymbol& NativeUnwinder::symbolize(uint64_t pc, bool exact) {
  if (!dwfl_) return none_;
  // A return address points after the call: look up the call itself.
  Dwarf_Addr addr = exact || pc == 0 ? pc : pc - 1;
  auto hit = by_pc_.find(addr);
  if (hit != by_pc_.end()) return *hit->second;
  Dwfl_Module* mod = dwfl_addrmodule(dwfl_, addr);
  if (!mod) return none_;
  Dwarf_Addr start = 0;
  const char* mod_name = dwfl_module_info(mod, nullptr, &start, nullptr, nullptr, nullptr, nullptr, nullptr);
  std::string key = module_key(mod, mod_name);
  SymbolCache& c = cache();
  {
    std::lock_guard<std::mutex> lock(c.mu);
    auto& m = c.by_module[key];
    auto it = m.find(addr - start);
    if (it != m.end()) {
      by_pc_.emplace(addr, &it->second);
      return it->second;
    }
  }
  NativeSymbol s = lookup(mod, mod_name, addr, start);
  std::lock_guard<std::mutex> lock(c.mu);
  // Entries are never erased, so the reference stays valid (unordered_map keeps nodes).
  const NativeSymbol& out = c.by_module[key].emplace(addr - start, std::move(s)).first->second;
  by_pc_.emplace(addr, &out);
  return out;
}

}  // namespace pyprofd
