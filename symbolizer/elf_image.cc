#include "symbolizer/elf_image.h"

#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstring>
#include <map>
#include <tuple>

namespace pyprofd {
namespace {

constexpr size_t kMaxSegments = 4096;

bool add_overflows(uint64_t a, uint64_t b) { return a + b < a; }

uint64_t page_size() {
  static const uint64_t ps = [] {
    long v = sysconf(_SC_PAGESIZE);
    return v > 0 ? uint64_t(v) : uint64_t(4096);
  }();
  return ps;
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// Parses "3.9.18", "3.13.0rc1", "3.12.0a7+" exactly; returns (major, minor, micro).
bool parse_version(const char* s, size_t n, int v[3]) {
  size_t i = 0;
  for (int part = 0; part < 3; ++part) {
    if (part > 0) {
      if (i >= n || s[i] != '.') return false;
      ++i;
    }
    size_t st = i;
    int x = 0;
    while (i < n && is_digit(s[i]) && i - st < 3) x = x * 10 + (s[i++] - '0');
    if (i == st || (i < n && is_digit(s[i]))) return false;
    v[part] = x;
  }
  if (i < n && (s[i] == 'a' || s[i] == 'b' || s[i] == 'r')) {
    if (s[i] == 'r') {
      if (i + 1 >= n || s[i + 1] != 'c') return false;
      ++i;
    }
    ++i;
    size_t st = i;
    while (i < n && is_digit(s[i])) ++i;
    if (i == st) return false;
  }
  if (i < n && s[i] == '+') ++i;
  return i == n;
}

}  // namespace

std::unique_ptr<ElfImage> ElfImage::open(const std::string& path, std::string* error) {
  auto fail = [&](const std::string& why) -> std::unique_ptr<ElfImage> {
    if (error) *error = path + ": " + why;
    return nullptr;
  };
  static const bool elf_ok = elf_version(EV_CURRENT) != EV_NONE;
  if (!elf_ok) return fail("libelf version mismatch");

  std::unique_ptr<ElfImage> img(new ElfImage());
  img->path_ = path;
  img->fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (img->fd_ < 0) return fail(std::strerror(errno));
  img->elf_ = elf_begin(img->fd_, ELF_C_READ_MMAP, nullptr);
  if (!img->elf_) return fail(elf_errmsg(-1));
  if (elf_kind(img->elf_) != ELF_K_ELF) return fail("not an ELF file");
  img->raw_ = elf_rawfile(img->elf_, &img->raw_size_);
  if (!img->raw_) return fail("cannot map file");

  GElf_Ehdr eh;
  if (!gelf_getehdr(img->elf_, &eh)) return fail(elf_errmsg(-1));
  img->is_dyn_ = eh.e_type == ET_DYN;

  size_t nph = 0;
  if (elf_getphdrnum(img->elf_, &nph) != 0) return fail(elf_errmsg(-1));
  for (size_t i = 0; i < nph && i < kMaxSegments; ++i) {
    GElf_Phdr ph;
    if (!gelf_getphdr(img->elf_, int(i), &ph)) continue;
    if (ph.p_type != PT_LOAD) continue;
    // A segment whose file part lies outside the file is ignored rather than trusted.
    if (add_overflows(ph.p_offset, ph.p_filesz) || ph.p_offset + ph.p_filesz > img->raw_size_) continue;
    if (add_overflows(ph.p_vaddr, ph.p_memsz) || ph.p_filesz > ph.p_memsz) continue;
    img->segments_.push_back({ph.p_vaddr, ph.p_offset, ph.p_filesz, ph.p_memsz, uint32_t(ph.p_flags)});
  }
  if (img->segments_.empty()) return fail("no loadable segments");
  return img;
}

ElfImage::~ElfImage() {
  if (elf_) elf_end(elf_);
  if (fd_ >= 0) ::close(fd_);
}

void ElfImage::build_symbols() const {
  // .dynsym first so its entries win; .symtab only adds names the dynamic table lacks.
  for (Elf64_Word want : {Elf64_Word(SHT_DYNSYM), Elf64_Word(SHT_SYMTAB)}) {
    Elf_Scn* scn = nullptr;
    while ((scn = elf_nextscn(elf_, scn)) != nullptr) {
      GElf_Shdr sh;
      if (!gelf_getshdr(scn, &sh) || sh.sh_type != want || sh.sh_entsize == 0) continue;
      Elf_Data* data = elf_getdata(scn, nullptr);
      if (!data || !data->d_buf) continue;
      size_t count = data->d_size / sh.sh_entsize;
      for (size_t i = 1; i < count; ++i) {
        GElf_Sym s;
        if (!gelf_getsym(data, int(i), &s)) break;
        if (s.st_shndx == SHN_UNDEF || s.st_name == 0) continue;
        const char* name = elf_strptr(elf_, sh.sh_link, s.st_name);
        if (!name || !*name) continue;
        syms_.emplace(name, Sym{s.st_value, s.st_size});
      }
    }
  }
}

std::optional<uint64_t> ElfImage::symbol(const std::string& name) const {
  std::call_once(sym_once_, [this] { build_symbols(); });
  auto it = syms_.find(name);
  if (it == syms_.end()) return std::nullopt;
  return it->second.value;
}

std::optional<uint64_t> ElfImage::symbol_size(const std::string& name) const {
  std::call_once(sym_once_, [this] { build_symbols(); });
  auto it = syms_.find(name);
  if (it == syms_.end()) return std::nullopt;
  return it->second.size;
}

std::optional<uint64_t> ElfImage::load_bias(uint64_t map_start, uint64_t map_offset) const {
  const uint64_t pmask = ~(page_size() - 1);
  // The kernel maps each PT_LOAD from its page-aligned file offset, so a mapping that starts a
  // segment has offset == page_down(p_offset). Mappings split later (mprotect for RELRO) start
  // inside a segment's file part; match those second.
  const Segment* hit = nullptr;
  for (const Segment& s : segments_)
    if ((s.offset & pmask) == map_offset) { hit = &s; break; }
  if (!hit) {
    for (const Segment& s : segments_)
      if (s.offset <= map_offset && map_offset - s.offset < s.filesz) { hit = &s; break; }
  }
  if (!hit) return std::nullopt;
  // File offset map_offset sits at vaddr (p_vaddr - p_offset) + map_offset in the unbiased image.
  uint64_t vaddr = hit->vaddr - hit->offset + map_offset;
  return map_start - vaddr;  // modular arithmetic: a bias is an address delta
}

std::optional<ElfImage::Section> ElfImage::section(const std::string& name) const {
  size_t shstrndx = 0;
  if (elf_getshdrstrndx(elf_, &shstrndx) != 0) return std::nullopt;
  Elf_Scn* scn = nullptr;
  for (int i = 0; i < 4096 && (scn = elf_nextscn(elf_, scn)) != nullptr; ++i) {
    GElf_Shdr sh;
    if (!gelf_getshdr(scn, &sh)) continue;
    const char* n = elf_strptr(elf_, shstrndx, sh.sh_name);
    if (n && name == n) return Section{sh.sh_addr, sh.sh_size};
  }
  return std::nullopt;
}

bool ElfImage::read_vaddr(uint64_t vaddr, void* dst, size_t len) const {
  if (add_overflows(vaddr, len)) return false;
  for (const Segment& s : segments_) {
    if (vaddr < s.vaddr || vaddr + len > s.vaddr + s.filesz) continue;
    std::memcpy(dst, raw_ + s.offset + (vaddr - s.vaddr), len);
    return true;
  }
  return false;
}

std::string ElfImage::find_python_version() const {
  // PY_VERSION is a NUL-terminated string in .rodata, though the compiler may merge it into the
  // tail of a longer literal (".../Python-3.9.18"). So: scan non-writable segments for strings
  // whose tail after a non-alphanumeric character is a version, and rank the candidates.
  std::map<std::tuple<int, int, int>, std::string> cands;
  for (const Segment& s : segments_) {
    if (s.flags & PF_W) continue;
    const char* base = raw_ + s.offset;
    const char* end = base + s.filesz;
    const char* p = base;
    while (p < end) {
      const char* nul = static_cast<const char*>(std::memchr(p, 0, size_t(end - p)));
      if (!nul) break;
      // Longest run of version characters before the NUL (bounded).
      const char* b = nul;
      while (b > p && nul - b < 24 && (is_digit(b[-1]) || b[-1] == '.' || b[-1] == '+' ||
                                       b[-1] == 'a' || b[-1] == 'b' || b[-1] == 'r' || b[-1] == 'c'))
        --b;
      for (const char* t = b; t + 5 <= nul; ++t) {
        if (*t != '3' || (t > base && (isalnum(static_cast<unsigned char>(t[-1])) || t[-1] == '.')))
          continue;
        int v[3];
        if (parse_version(t, size_t(nul - t), v)) {
          cands.emplace(std::make_tuple(v[0], v[1], v[2]), std::string(t, nul));
          break;
        }
      }
      p = nul + 1;
    }
  }
  if (cands.empty()) return "";
  // Prefer a candidate whose "3.X" matches a "pythonX.Y" name in the image; otherwise the highest
  // (spurious matches are older standards, e.g. Unicode "3.2.0" in unicodedata).
  std::string best;
  for (const auto& [key, str] : cands) {
    std::string tag = "python" + std::to_string(std::get<0>(key)) + "." + std::to_string(std::get<1>(key));
    for (const Segment& s : segments_) {
      if (s.flags & PF_W) continue;
      const char* base = raw_ + s.offset;
      const char* hay = base;
      size_t left = s.filesz;
      while (left >= tag.size()) {
        const void* f = memmem(hay, left, tag.data(), tag.size());
        if (!f) break;
        const char* fe = static_cast<const char*>(f) + tag.size();
        if (fe >= base + s.filesz || !is_digit(*fe)) best = str;
        left -= size_t(fe - hay);
        hay = fe;
      }
    }
  }
  if (!best.empty()) return best;
  return cands.rbegin()->second;
}

std::optional<std::pair<int, int>> python_version_from_filename(const std::string& path) {
  size_t slash = path.rfind('/');
  std::string base = slash == std::string::npos ? path : path.substr(slash + 1);
  size_t p = base.find("python");
  if (p == std::string::npos) return std::nullopt;
  size_t i = p + 6;
  int major = 0, minor = 0;
  size_t st = i;
  while (i < base.size() && is_digit(base[i]) && i - st < 2) major = major * 10 + (base[i++] - '0');
  if (i == st || i >= base.size() || base[i] != '.') return std::nullopt;
  st = ++i;
  while (i < base.size() && is_digit(base[i]) && i - st < 3) minor = minor * 10 + (base[i++] - '0');
  if (i == st || (i < base.size() && is_digit(base[i]))) return std::nullopt;
  return std::make_pair(major, minor);
}

}  // namespace pyprofd
