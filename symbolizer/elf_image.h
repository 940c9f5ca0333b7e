// Read-only view of an ELF file (libelf): symbols, program headers, initialised data.
// The file is untrusted: every lookup is bounded and failures are reported, never fatal.
#pragma once
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

typedef struct Elf Elf;  // from <libelf.h>; kept out of this header

namespace pyprofd {

class ElfImage {
 public:
  struct Segment {  // one PT_LOAD program header
    uint64_t vaddr, offset, filesz, memsz;
    uint32_t flags;  // PF_R | PF_W | PF_X
  };

  // nullptr on failure, with a reason in *error (if non-null).
  static std::unique_ptr<ElfImage> open(const std::string& path, std::string* error);
  ~ElfImage();
  ElfImage(const ElfImage&) = delete;
  ElfImage& operator=(const ElfImage&) = delete;

  const std::string& path() const { return path_; }

  // st_value of a defined symbol: .dynsym first, then .symtab. Table built once, on first use.
  std::optional<uint64_t> symbol(const std::string& name) const;
  std::optional<uint64_t> symbol_size(const std::string& name) const;

  // Load bias given one mapping of this file (start address and file offset from /proc/PID/maps):
  // runtime address = st_value + bias. Derived from the PT_LOAD headers.
  std::optional<uint64_t> load_bias(uint64_t map_start, uint64_t map_offset) const;

  // Copies file bytes at virtual address [vaddr, vaddr+len) if wholly inside one PT_LOAD's file part.
  bool read_vaddr(uint64_t vaddr, void* dst, size_t len) const;

  // sh_addr and sh_size of the section called name (e.g. ".AsyncioDebug": CPython's debug
  // sections are found by name, their symbols are not exported); nullopt if absent.
  struct Section {
    uint64_t vaddr, size;
  };
  std::optional<Section> section(const std::string& name) const;

  // PY_VERSION-like string ("3.9.18") from read-only data; "" if none. For < 3.11 (no Py_Version).
  std::string find_python_version() const;

  bool is_pie_or_shared() const { return is_dyn_; }
  const std::vector<Segment>& segments() const { return segments_; }

 private:
  ElfImage() = default;
  void build_symbols() const;

  struct Sym { uint64_t value, size; };
  std::string path_;
  int fd_ = -1;
  Elf* elf_ = nullptr;
  const char* raw_ = nullptr;  // whole file (libelf's mapping), raw_size_ bytes
  size_t raw_size_ = 0;
  bool is_dyn_ = false;
  std::vector<Segment> segments_;
  mutable std::once_flag sym_once_;
  mutable std::unordered_map<std::string, Sym> syms_;
};

// (3, 9) from ".../libpython3.9.so.1.0", "libpython3.6m.so", "python3.11"; nullopt otherwise.
std::optional<std::pair<int, int>> python_version_from_filename(const std::string& path);

}  // namespace pyprofd
