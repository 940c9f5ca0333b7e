// Checks the built-in layouts against each installed interpreter's own headers
// (tests/unit/offsets_probe.c, compiled and run here), and the 3.13
// _Py_DebugOffsets reader against the bytes of the real libpython3.13.
#include <fcntl.h>
#include <gelf.h>
#include <gtest/gtest.h>
#include <libelf.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstddef>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "profiler/debug_offsets.h"
#include "profiler/layout.h"
#include "profiler/remote_memory.h"

namespace pyprofd {
namespace {

namespace fs = std::filesystem;

struct Field {
  const char* name;
  uint32_t Layout::*u = nullptr;
  int Layout::*i = nullptr;
  int8_t Layout::*b = nullptr;
  long long get(const Layout& l) const { return u ? static_cast<long long>(l.*u) : i ? l.*i : l.*b; }
  void set(Layout* l, long long v) const {
    if (u) l->*u = static_cast<uint32_t>(v); else if (i) l->*i = static_cast<int>(v); else l->*b = static_cast<int8_t>(v);
  }
};

#define U(f) Field{#f, &Layout::f, nullptr}
#define I(f) Field{#f, nullptr, &Layout::f}
#define I8(f) Field{#f, nullptr, nullptr, &Layout::f}
// Every Layout field; the probe must print each of them.
const std::vector<Field> kFields = {
    I(major), I(minor),
    U(rt_interpreters_head), U(rt_main_thread), U(rt_tstate_current), U(rt_gil),
    U(is_next), U(is_threads_head), U(is_modules), U(is_gil_ptr),
    U(gil_last_holder), U(gil_locked),
    U(ts_size), U(ts_next), U(ts_interp), U(ts_frame), U(ts_thread_id), U(ts_native_thread_id),
    U(ts_datastack_chunk), U(cframe_current_frame),
    U(fr_size), U(fr_back), U(fr_code), U(fr_lasti), U(fr_owner), U(fr_is_entry), I(owned_by_cstack),
    U(fr_state), I8(fr_live_a), I8(fr_live_b), I(owned_by_generator), I(owned_by_thread),
    U(chunk_previous), U(chunk_size), U(chunk_top), U(chunk_data),
    U(co_size), U(co_filename), U(co_name), U(co_qualname), U(co_firstlineno), U(co_flags), U(co_linetable),
    U(co_code_adaptive),
    U(str_length), U(str_state), U(str_ascii_size), U(str_compact_size), U(str_data_any),
    U(bytes_size), U(bytes_sval),
    U(ob_type), U(tp_name), U(tp_flags), U(tp_basicsize), U(tp_dictoffset),
    U(dict_used), U(dict_keys), U(dict_values), U(dk_size), U(dk_kind), U(dk_nentries), U(dk_indices),
    U(mod_dict),
    I(owned_by_interpreter), U(code_tag_bits), U(ts_base_frame), U(tuple_items),
};
#undef U
#undef I
#undef I8

std::string pyenv_root() {
  const char* env = getenv("PYENV_ROOT");
  return env && *env ? env : "/root/.pyenv";
}

// The newest "3.<minor>.<patch>" directory under $PYENV_ROOT/versions, or "".
std::string find_version_dir(int minor) {
  const std::string prefix = "3." + std::to_string(minor) + ".";
  std::string best;
  int best_patch = -1;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(pyenv_root() + "/versions", ec)) {
    const std::string n = e.path().filename().string();
    if (n.compare(0, prefix.size(), prefix) != 0) continue;
    const std::string patch = n.substr(prefix.size());
    if (patch.empty() || patch.find_first_not_of("0123456789") != std::string::npos) continue;
    if (std::stoi(patch) > best_patch) best_patch = std::stoi(patch), best = e.path().string();
  }
  return best;
}

// Debian sid's builds (tools/install-pythons.sh): ~/.cache/pyprofd/pythons/3.<minor>/root.
std::string sid_root(int minor) {
  const char* home = getenv("HOME");
  std::string root = std::string(home && *home ? home : "/root") + "/.cache/pyprofd/pythons/3." +
                     std::to_string(minor) + "/root";
  std::error_code ec;
  return fs::exists(root + "/usr/bin/python3." + std::to_string(minor), ec) ? root : "";
}

// How to build and run the probe against one installed version: pyenv's shared build,
// or else a sid tree (its own headers, libpython and loader: the system glibc is older).
struct ProbeEnv {
  std::string where, cflags, ldflags, run_prefix;
};
std::optional<ProbeEnv> probe_env(int minor) {
  const std::string ver = "3." + std::to_string(minor);
  if (std::string dir = find_version_dir(minor); !dir.empty()) {
    const std::string inc = dir + "/include/python" + ver;
    return ProbeEnv{dir, "-I'" + inc + "' -I'" + inc + "/internal'",
                    "-L'" + dir + "/lib' -lpython" + ver + " -Wl,-rpath,'" + dir + "/lib'",
                    "PYTHONHOME='" + dir + "' "};
  }
  std::string root = sid_root(minor);
  if (root.empty()) return std::nullopt;
  const std::string inc = root + "/usr/include/python" + ver, lib = root + "/usr/lib/x86_64-linux-gnu";
  // -D_Py_TIER2=3 -D_Py_JIT: Debian's build flags (sysconfig PY_CFLAGS_NODIST), not in pyconfig.h.
  return ProbeEnv{root, "-D_Py_TIER2=3 -D_Py_JIT -I'" + root + "/usr/include' -I'" + inc + "' -I'" + inc + "/internal'",
                  "-L'" + lib + "' -lpython" + ver + " -Wl,--unresolved-symbols=ignore-in-shared-libs",
                  "'" + lib + "/ld-linux-x86-64.so.2' --library-path '" + lib + "' "};
}

// Runs a shell command; returns its exit status and fills *out with stdout+stderr.
int run(const std::string& cmd, std::string* out) {
  FILE* p = popen((cmd + " 2>&1").c_str(), "r");
  if (!p) return -1;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out->append(buf, n);
  int st = pclose(p);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

std::map<std::string, long long> parse(const std::string& text) {
  std::map<std::string, long long> m;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) nl = text.size();
    const std::string line = text.substr(pos, nl - pos);
    const size_t eq = line.find('=');
    if (eq != std::string::npos) m[line.substr(0, eq)] = std::stoll(line.substr(eq + 1));
    pos = nl + 1;
  }
  return m;
}

// Our mirror of _Py_DebugOffsets has the header's size and section offsets.
template <class D>
void expect_mirror_shape(const std::map<std::string, long long>& probe, const std::string& ver) {
  EXPECT_EQ(probe.at("dbg_runtime_offset"), 0) << ver;
  EXPECT_EQ(probe.at("dbg_size"), static_cast<long long>(sizeof(D))) << ver;
  EXPECT_EQ(probe.at("dbg_interpreter_state"), offsetof(D, interpreter_state)) << ver;
  EXPECT_EQ(probe.at("dbg_thread_state"), offsetof(D, thread_state)) << ver;
  EXPECT_EQ(probe.at("dbg_interpreter_frame"), offsetof(D, interpreter_frame)) << ver;
  EXPECT_EQ(probe.at("dbg_code_object"), offsetof(D, code_object)) << ver;
  EXPECT_EQ(probe.at("dbg_type_object"), offsetof(D, type_object)) << ver;
  EXPECT_EQ(probe.at("dbg_tuple_object"), offsetof(D, tuple_object)) << ver;
  EXPECT_EQ(probe.at("dbg_unicode_object"), offsetof(D, unicode_object)) << ver;
  EXPECT_EQ(probe.at("dbg_gc"), offsetof(D, gc)) << ver;
}

class LayoutOffsetsTest : public ::testing::TestWithParam<int> {};

TEST_P(LayoutOffsetsTest, MatchesHeaders) {
  const int minor = GetParam();
  const std::string ver = "3." + std::to_string(minor);
  const auto env = probe_env(minor);
  if (!env)
    GTEST_SKIP() << "Python " << ver << " not installed under " << pyenv_root() << "/versions nor as "
                 << "~/.cache/pyprofd/pythons/" << ver << " (tools/install-pythons.sh)";
  const Layout* table = builtin_layout(3, minor);
  ASSERT_NE(table, nullptr) << "no built-in layout for " << ver;

  std::string tmpl = std::string(PYPROFD_BINARY_DIR) + "/layout_probe_XXXXXX";
  ASSERT_NE(mkdtemp(tmpl.data()), nullptr) << "mkdtemp " << tmpl;
  const std::string exe = tmpl + "/probe" + ver;
  std::string out;
  const std::string cc = "cc -DPy_BUILD_CORE " + env->cflags + " '" PYPROFD_SOURCE_DIR "/tests/unit/offsets_probe.c' -o '" +
                         exe + "' " + env->ldflags;
  ASSERT_EQ(run(cc, &out), 0) << "probe failed to compile for " << ver << ":\n" << cc << "\n" << out;
  out.clear();
  // PYTHONHOME: 3.8-3.10 start an interpreter to measure private structs.
  ASSERT_EQ(run(env->run_prefix + "'" + exe + "'", &out), 0) << "probe failed for " << ver << " (" << env->where
                                                             << "):\n" << out;
  const auto probe = parse(out);

  for (const Field& f : kFields) {
    auto it = probe.find(f.name);
    if (it == probe.end()) {
      ADD_FAILURE() << ver << ": probe printed no " << f.name;
      continue;
    }
    EXPECT_EQ(f.get(*table), it->second) << ver << " " << f.name << " (table vs headers)";
  }
  // Facts the walkers rely on that are not Layout fields.
  EXPECT_EQ(probe.at("state_kind_shift"), 2) << ver;
  EXPECT_EQ(probe.at("state_compact_shift"), 5) << ver;
  EXPECT_EQ(probe.at("state_ascii_shift"), 6) << ver;
  EXPECT_EQ(probe.at("mod_type_dictoffset"), table->mod_dict) << ver;
  if (minor == 13) expect_mirror_shape<DebugOffsets313>(probe, ver);
  if (minor == 14) expect_mirror_shape<DebugOffsets314>(probe, ver);
  if (minor == 15) expect_mirror_shape<DebugOffsets315>(probe, ver);
  std::error_code ec;
  if (!HasFailure()) fs::remove_all(tmpl, ec);
}

INSTANTIATE_TEST_SUITE_P(Versions, LayoutOffsetsTest, ::testing::Range(8, 16),
                         [](const ::testing::TestParamInfo<int>& p) { return "py3_" + std::to_string(p.param); });

TEST(BuiltinLayout, OnlySupportedVersions) {
  for (int minor = 8; minor <= 15; ++minor) {
    const Layout* l = builtin_layout(3, minor);
    ASSERT_NE(l, nullptr) << minor;
    EXPECT_EQ(l->major, 3);
    EXPECT_EQ(l->minor, minor);
  }
  EXPECT_EQ(builtin_layout(3, 7), nullptr);
  EXPECT_EQ(builtin_layout(3, 16), nullptr);
  EXPECT_EQ(builtin_layout(2, 7), nullptr);
}

// The capability fields the walkers read instead of the version, per version.
TEST(BuiltinLayout, Capabilities) {
  using FL = FrameLinkage;
  struct Want {
    int minor;
    FL linkage;
    int lasti_unit;
    bool cframe, chunks, shims, tid_from_pthread, debug_offsets;
  };
  const Want wants[] = {
      {8, FL::kFrameObjects, 1, false, false, false, true, false},
      {9, FL::kFrameObjects, 1, false, false, false, true, false},
      {10, FL::kFrameObjects, 2, false, false, false, true, false},
      {11, FL::kInterpreterFrames, 0, true, true, false, false, false},
      {12, FL::kInterpreterFrames, 0, true, true, true, false, false},
      {13, FL::kInterpreterFrames, 0, false, true, true, false, true},
      {14, FL::kInterpreterFrames, 0, false, true, true, false, true},
      {15, FL::kInterpreterFrames, 0, false, true, true, false, true},
  };
  for (const Want& w : wants) {
    const Layout* l = builtin_layout(3, w.minor);
    ASSERT_NE(l, nullptr) << w.minor;
    EXPECT_EQ(l->frame_linkage, w.linkage) << w.minor;
    EXPECT_EQ(l->lasti_unit, w.lasti_unit) << w.minor;
    EXPECT_EQ(l->has_cframe, w.cframe) << w.minor;
    EXPECT_EQ(l->has_stack_chunks, w.chunks) << w.minor;
    EXPECT_EQ(l->has_shim_frames, w.shims) << w.minor;
    EXPECT_EQ(l->tid_from_pthread, w.tid_from_pthread) << w.minor;
    EXPECT_EQ(l->has_debug_offsets, w.debug_offsets) << w.minor;
  }
}

// ---- _Py_DebugOffsets ----------------------------------------------------

// The initial bytes of _PyRuntime as stored in the library file (they are
// statically initialised, so the file holds the real debug offsets).
bool read_runtime_head(const std::string& path, size_t len, std::vector<uint8_t>* out, std::string* err) {
  elf_version(EV_CURRENT);
  int fd = open(path.c_str(), O_RDONLY);
  if (fd < 0) return *err = "cannot open " + path, false;
  Elf* e = elf_begin(fd, ELF_C_READ, nullptr);
  uint64_t addr = 0, size = 0;
  Elf_Scn* scn = nullptr;
  while (e && !addr && (scn = elf_nextscn(e, scn))) {
    GElf_Shdr sh;
    if (!gelf_getshdr(scn, &sh) || (sh.sh_type != SHT_DYNSYM && sh.sh_type != SHT_SYMTAB) || !sh.sh_entsize) continue;
    Elf_Data* data = elf_getdata(scn, nullptr);
    for (size_t i = 0; data && i < sh.sh_size / sh.sh_entsize; ++i) {
      GElf_Sym sym;
      const char* name = gelf_getsym(data, static_cast<int>(i), &sym) ? elf_strptr(e, sh.sh_link, sym.st_name) : nullptr;
      if (name && std::string(name) == "_PyRuntime") {
        addr = sym.st_value, size = sym.st_size;
        break;
      }
    }
  }
  bool ok = false;
  *err = addr ? "no file bytes hold _PyRuntime" : "no _PyRuntime symbol in " + path;
  scn = nullptr;
  while (e && addr && size >= len && !ok && (scn = elf_nextscn(e, scn))) {
    GElf_Shdr sh;
    if (!gelf_getshdr(scn, &sh) || sh.sh_type == SHT_NOBITS) continue;
    if (addr < sh.sh_addr || addr + len > sh.sh_addr + sh.sh_size) continue;
    out->resize(len);
    ok = pread(fd, out->data(), len, static_cast<off_t>(sh.sh_offset + (addr - sh.sh_addr))) == static_cast<ssize_t>(len);
  }
  if (e) elf_end(e);
  close(fd);
  return ok;
}

class DebugOffsetsTest : public ::testing::Test {
 protected:
  static constexpr uint64_t kRuntimeAddr = 0x7f12345000c0;
  void SetUp() override {
    const std::string dir = find_version_dir(13);
    if (dir.empty()) GTEST_SKIP() << "Python 3.13 not installed under " << pyenv_root() << "/versions";
    std::string err;
    ASSERT_TRUE(read_runtime_head(dir + "/lib/libpython3.13.so.1.0", sizeof(DebugOffsets313), &bytes_, &err)) << err;
    std::memcpy(&d_, bytes_.data(), sizeof d_);
  }
  std::vector<uint8_t> bytes_;
  DebugOffsets313 d_;
};

// Fields apply_debug_offsets must take from the target.
const char* const kOverridden[] = {
    "rt_interpreters_head", "is_next", "is_threads_head", "is_modules", "is_gil_ptr", "gil_last_holder",
    "gil_locked", "ts_size", "ts_next", "ts_interp", "ts_frame", "ts_thread_id", "ts_native_thread_id",
    "ts_datastack_chunk", "fr_size", "fr_back", "fr_code", "fr_lasti", "fr_owner", "co_size", "co_filename",
    "co_name", "co_qualname", "co_firstlineno", "co_linetable", "co_code_adaptive", "ob_type", "tp_name",
    "tp_flags", "dict_keys", "dict_values", "bytes_size", "bytes_sval", "str_state", "str_length",
    "str_ascii_size"};

TEST_F(DebugOffsetsTest, RealLibraryAgreesWithTable) {
  SnapshotMemory mem;
  mem.add(kRuntimeAddr, bytes_);
  const Layout& table = *builtin_layout(3, 13);
  Layout l = table;
  for (const char* name : kOverridden)
    for (const Field& f : kFields)
      if (std::string(f.name) == name) f.set(&l, 0xdead);
  std::string err;
  ASSERT_TRUE(apply_debug_offsets(mem, kRuntimeAddr, &l, &err)) << err;
  for (const Field& f : kFields) EXPECT_EQ(f.get(l), f.get(table)) << f.name << " (debug offsets vs table)";
}

TEST_F(DebugOffsetsTest, RejectsWrongCookie) {
  bytes_[0] = 'X';
  SnapshotMemory mem;
  mem.add(kRuntimeAddr, bytes_);
  Layout l = *builtin_layout(3, 13);
  l.ts_next = 1234;
  std::string err;
  EXPECT_FALSE(apply_debug_offsets(mem, kRuntimeAddr, &l, &err));
  EXPECT_NE(err.find("cookie"), std::string::npos) << err;
  EXPECT_EQ(l.ts_next, 1234u) << "layout must be untouched on error";
}

TEST_F(DebugOffsetsTest, RejectsTooLargeOffset) {
  d_.thread_state.next = 1u << 20;
  Layout l = *builtin_layout(3, 13);
  std::string err;
  EXPECT_FALSE(apply_debug_offsets(d_, &l, &err));
  EXPECT_NE(err.find("thread_state.next"), std::string::npos) << err;
  EXPECT_NE(err.find("bound"), std::string::npos) << err;
  EXPECT_EQ(l.ts_next, builtin_layout(3, 13)->ts_next);
}

TEST_F(DebugOffsetsTest, RejectsOffsetOutsideItsStruct) {
  d_.code_object.filename = d_.code_object.co_code_adaptive;
  Layout l = *builtin_layout(3, 13);
  std::string err;
  EXPECT_FALSE(apply_debug_offsets(d_, &l, &err));
  EXPECT_NE(err.find("code_object.filename"), std::string::npos) << err;
}

// Found by fuzz_threads: a code object "read up to its instructions" that ends before
// ob_type or co_flags made CodeCache read past its copy.
TEST_F(DebugOffsetsTest, RejectsCodeObjectTooShortForTypeAndFlags) {
  DebugOffsets313 short_code = d_;
  short_code.code_object.co_code_adaptive = 8;  // every named code field at 0
  short_code.code_object.filename = short_code.code_object.name = short_code.code_object.qualname = 0;
  short_code.code_object.linetable = short_code.code_object.firstlineno = 0;
  Layout l = *builtin_layout(3, 13);
  std::string err;
  EXPECT_FALSE(apply_debug_offsets(short_code, &l, &err));
  EXPECT_NE(err.find("in a code object"), std::string::npos) << err;

  DebugOffsets313 far_type = d_;
  far_type.pyobject.ob_type = 64;  // inside a fuzzed pyobject.size, outside any object's header
  far_type.pyobject.size = 128;
  EXPECT_FALSE(apply_debug_offsets(far_type, &l, &err));
  EXPECT_NE(err.find("pyobject.ob_type"), std::string::npos) << err;
}

TEST_F(DebugOffsetsTest, RejectsZeroSizeAndVersionMismatch) {
  DebugOffsets313 zero = d_;
  zero.thread_state.size = 0;
  Layout l = *builtin_layout(3, 13);
  std::string err;
  EXPECT_FALSE(apply_debug_offsets(zero, &l, &err));
  EXPECT_NE(err.find("thread_state.size"), std::string::npos) << err;

  Layout l12 = *builtin_layout(3, 12);
  EXPECT_FALSE(apply_debug_offsets(d_, &l12, &err));
  EXPECT_NE(err.find("3.12"), std::string::npos) << err;

  DebugOffsets313 v = d_;
  v.version = 0x030C01F0;  // 3.12.1 final
  EXPECT_FALSE(apply_debug_offsets(v, &l, &err));
  EXPECT_NE(err.find("version"), std::string::npos) << err;
}

TEST_F(DebugOffsetsTest, RejectsUnreadableAddress) {
  SnapshotMemory mem;
  mem.add(kRuntimeAddr, bytes_.data(), 16);  // too short for the whole struct
  Layout l = *builtin_layout(3, 13);
  std::string err;
  EXPECT_FALSE(apply_debug_offsets(mem, kRuntimeAddr, &l, &err));
  EXPECT_NE(err.find("cannot read"), std::string::npos) << err;
}

// 3.14 and 3.15: the bytes of _PyRuntime in Debian sid's (static) executables; the
// mirror is chosen by the version the struct itself carries.
class DebugOffsetsSidTest : public ::testing::TestWithParam<int> {
 protected:
  static constexpr uint64_t kRuntimeAddr = 0xba07c0;
  void SetUp() override {
    minor_ = GetParam();
    const std::string root = sid_root(minor_);
    if (root.empty()) GTEST_SKIP() << "~/.cache/pyprofd/pythons/3." << minor_ << " not installed (tools/install-pythons.sh)";
    const size_t len = minor_ == 14 ? sizeof(DebugOffsets314) : sizeof(DebugOffsets315);
    std::string err;
    const std::string exe = root + "/usr/bin/python3." + std::to_string(minor_);
    ASSERT_TRUE(read_runtime_head(exe, len, &bytes_, &err)) << err;
  }
  bool apply(std::vector<uint8_t> bytes, Layout* l, std::string* err) {
    SnapshotMemory mem;
    mem.add(kRuntimeAddr, bytes);
    return apply_debug_offsets(mem, kRuntimeAddr, l, err);
  }
  int minor_ = 0;
  std::vector<uint8_t> bytes_;
};

TEST_P(DebugOffsetsSidTest, RealExecutableAgreesWithTable) {
  const Layout& table = *builtin_layout(3, minor_);
  Layout l = table;
  for (const char* name : kOverridden)
    for (const Field& f : kFields)
      if (std::string(f.name) == name) f.set(&l, 0xdead);
  l.tuple_items = 0xdead;
  if (minor_ == 15) l.ts_base_frame = 0xdead;
  std::string err;
  ASSERT_TRUE(apply(bytes_, &l, &err)) << err;
  for (const Field& f : kFields) EXPECT_EQ(f.get(l), f.get(table)) << f.name << " (debug offsets vs table)";
}

TEST_P(DebugOffsetsSidTest, RefusesUnknownVersionAndFreeThreaded) {
  std::string err;
  Layout l = *builtin_layout(3, minor_);
  std::vector<uint8_t> b = bytes_;
  const uint64_t v316 = 0x031000f0;  // a structure version no mirror describes
  std::memcpy(&b[8], &v316, 8);
  EXPECT_FALSE(apply(b, &l, &err));
  EXPECT_NE(err.find("not one pyprofd knows"), std::string::npos) << err;
  Layout other = *builtin_layout(3, minor_ == 14 ? 15 : 14);  // the struct is another version's
  EXPECT_FALSE(apply(bytes_, &other, &err));
  EXPECT_NE(err.find("mirror"), std::string::npos) << err;
  b = bytes_;
  b[16] = 1;  // free_threaded
  EXPECT_FALSE(apply(b, &l, &err));
  EXPECT_EQ(err, kFreeThreadedError);
}

INSTANTIATE_TEST_SUITE_P(Versions, DebugOffsetsSidTest, ::testing::Values(14, 15),
                         [](const ::testing::TestParamInfo<int>& p) { return "sid3_" + std::to_string(p.param); });

}  // namespace
}  // namespace pyprofd
