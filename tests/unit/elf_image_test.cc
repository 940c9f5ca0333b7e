// ElfImage against the real interpreters on this machine: symbols vs readelf, Py_Version,
// PY_VERSION, and load bias checked against the address a running interpreter reports itself.
#include "symbolizer/elf_image.h"

#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <climits>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "profiler/proc_maps.h"
#include "tests/unit/test_interpreters.h"

namespace pyprofd {
namespace {

struct ImageCase {
  std::string name;    // test suffix
  std::string python;  // executable
  std::string image;   // file holding _PyRuntime
  bool static_build;   // Debian: libpython linked into the non-PIE executable
};

// pyenv builds keep _PyRuntime in lib/libpython3.M.so.1.0 beside bin/.
const std::vector<ImageCase>& image_cases() {
  static std::vector<ImageCase> list = [] {
    std::vector<ImageCase> out;
    for (const Interp& in : test_interpreters()) {
      std::string py = in.path;
      bool debian = std::string(in.label).rfind("debian", 0) == 0 || std::string(in.label).rfind("sid", 0) == 0;
      std::string root = py.substr(0, py.rfind("/bin/"));
      out.push_back(ImageCase{in.label, py, debian ? py : root + "/lib/libpython3." + std::to_string(in.minor) + ".so.1.0",
                              debian});
    }
    return out;
  }();
  return list;
}

std::string run(const std::string& cmd) {
  std::string out;
  FILE* f = popen(cmd.c_str(), "r");
  if (!f) return out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), f)) > 0) out.append(buf, n);
  pclose(f);
  return out;
}

// Reads one line from fd, bounded by a timeout so a broken child fails the test instead of hanging.
bool read_line(int fd, std::string* line, int timeout_ms) {
  line->clear();
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, timeout_ms) <= 0) return false;
    char c;
    if (read(fd, &c, 1) != 1) return false;
    if (c == '\n') return true;
    *line += c;
  }
}

// A python running `script`; its first stdout line is the readiness signal. It then blocks on stdin.
struct Child {
  pid_t pid = -1;
  int in = -1, out = -1;
  bool start(const std::string& python, const std::string& script) {
    int ip[2], op[2];
    if (pipe(ip) != 0) return false;
    if (pipe(op) != 0) { close(ip[0]); close(ip[1]); return false; }
    pid = fork();
    if (pid == 0) {
      dup2(ip[0], 0);
      dup2(op[1], 1);
      close(ip[0]); close(ip[1]); close(op[0]); close(op[1]);
      execl(python.c_str(), python.c_str(), "-c", script.c_str(), (char*)nullptr);
      _exit(127);
    }
    close(ip[0]);
    close(op[1]);
    in = ip[1];
    out = op[0];
    return pid > 0;
  }
  ~Child() {
    if (pid > 0) { kill(pid, SIGKILL); waitpid(pid, nullptr, 0); }
    if (in >= 0) close(in);
    if (out >= 0) close(out);
  }
};

struct Facts { std::string version; unsigned long hexversion = 0; };

Facts interpreter_facts(const ImageCase& in) {
  std::istringstream s(run(std::string(in.python) +
                           " -c 'import sys; print(sys.version.split()[0], sys.hexversion)'"));
  Facts f;
  s >> f.version >> f.hexversion;
  return f;
}

// (value, size) of a dynamic symbol as readelf prints it.
bool readelf_symbol(const std::string& file, const std::string& name, uint64_t* value, uint64_t* size) {
  std::istringstream s(run("readelf -sW --dyn-syms '" + file + "'"));
  std::string line;
  while (std::getline(s, line)) {
    std::istringstream ls(line);
    std::string num, val, sz, type, bind, vis, ndx, nm;
    if (!(ls >> num >> val >> sz >> type >> bind >> vis >> ndx >> nm)) continue;
    if (nm != name || ndx == "UND") continue;
    *value = std::strtoull(val.c_str(), nullptr, 16);
    *size = std::strtoull(sz.c_str(), nullptr, 0);
    return true;
  }
  return false;
}

class ElfImageInterp : public ::testing::TestWithParam<ImageCase> {
 protected:
  void SetUp() override {
    const ImageCase& in = GetParam();
    if (access(in.python.c_str(), X_OK) != 0 || access(in.image.c_str(), R_OK) != 0)
      GTEST_SKIP() << "interpreter not installed: " << in.python;
    std::string err;
    img_ = ElfImage::open(in.image, &err);
    ASSERT_TRUE(img_) << err;
  }
  std::unique_ptr<ElfImage> img_;
};

TEST_P(ElfImageInterp, PyRuntimeMatchesReadelf) {
  uint64_t value = 0, size = 0;
  ASSERT_TRUE(readelf_symbol(GetParam().image, "_PyRuntime", &value, &size));
  auto v = img_->symbol("_PyRuntime");
  ASSERT_TRUE(v);
  EXPECT_EQ(*v, value);
  auto sz = img_->symbol_size("_PyRuntime");
  ASSERT_TRUE(sz);
  EXPECT_EQ(*sz, size);
  EXPECT_GT(*sz, 0u);
  EXPECT_FALSE(img_->symbol("no_such_symbol_pyprofd"));
  EXPECT_EQ(img_->is_pie_or_shared(), !GetParam().static_build);
}

TEST_P(ElfImageInterp, VersionFromImage) {
  Facts f = interpreter_facts(GetParam());
  ASSERT_FALSE(f.version.empty()) << "could not run " << GetParam().python;
  EXPECT_EQ(img_->find_python_version(), f.version);
  auto pv = img_->symbol("Py_Version");
  if (f.hexversion < 0x030B0000) {
    EXPECT_FALSE(pv);
  } else {
    ASSERT_TRUE(pv);
    uint64_t raw = 0;
    ASSERT_TRUE(img_->read_vaddr(*pv, &raw, sizeof(raw)));
    EXPECT_EQ(raw & 0xffffffffu, f.hexversion) << std::hex << raw;
  }
  auto fv = python_version_from_filename(GetParam().image);
  ASSERT_TRUE(fv);
  EXPECT_EQ(fv->first, int(f.hexversion >> 24));
  EXPECT_EQ(fv->second, int((f.hexversion >> 16) & 0xff));
}

TEST_P(ElfImageInterp, LoadBiasMatchesRunningInterpreter) {
  const ImageCase& in = GetParam();
  std::string lib = in.static_build ? "ctypes.CDLL(None)" : "ctypes.pythonapi";
  std::string script = "import ctypes, sys\n"
                       "a = ctypes.addressof(ctypes.c_char.in_dll(" + lib + ", '_PyRuntime'))\n"
                       "sys.stdout.write('%d\\n' % a); sys.stdout.flush(); sys.stdin.read()\n";
  Child c;
  ASSERT_TRUE(c.start(in.python, script));
  std::string line;
  ASSERT_TRUE(read_line(c.out, &line, 30000)) << "no readiness line from " << in.python;
  uint64_t runtime_addr = std::strtoull(line.c_str(), nullptr, 10);
  ASSERT_NE(runtime_addr, 0u);

  std::vector<MapEntry> maps;
  int err = 0;
  ASSERT_TRUE(read_maps(c.pid, &maps, &err)) << err;
  char real[PATH_MAX];
  ASSERT_TRUE(realpath(in.image.c_str(), real));
  auto sym = img_->symbol("_PyRuntime");
  ASSERT_TRUE(sym);
  // Every mapping of the file must give the same bias, and it must place _PyRuntime where the
  // interpreter itself says it is.
  int seen = 0;
  for (const MapEntry& m : maps) {
    if (m.path != real) continue;
    // The file opened through /proc/PID/root is the same file (container-safe path).
    auto bias = img_->load_bias(m.start, m.offset);
    ASSERT_TRUE(bias) << std::hex << m.start << " off " << m.offset;
    EXPECT_EQ(*sym + *bias, runtime_addr) << std::hex << m.start << " off " << m.offset;
    if (in.static_build) {
      EXPECT_EQ(*bias, 0u);
    }
    ++seen;
  }
  EXPECT_GE(seen, 3) << "too few mappings of " << real;  // several PT_LOADs, each checked
  auto via_root = ElfImage::open(proc_root_path(c.pid, real), nullptr);
  ASSERT_TRUE(via_root);
  EXPECT_EQ(via_root->symbol("_PyRuntime"), sym);
}

INSTANTIATE_TEST_SUITE_P(Interpreters, ElfImageInterp, ::testing::ValuesIn(image_cases()),
                         [](const ::testing::TestParamInfo<ImageCase>& i) { return i.param.name; });

TEST(ElfImage, FilenameVersion) {
  using P = std::pair<int, int>;
  EXPECT_EQ(python_version_from_filename("/x/lib/libpython3.9.so.1.0"), P(3, 9));
  EXPECT_EQ(python_version_from_filename("libpython3.6m.so"), P(3, 6));
  EXPECT_EQ(python_version_from_filename("libpython3.13t.so.1.0"), P(3, 13));
  EXPECT_EQ(python_version_from_filename("/usr/bin/python3.11"), P(3, 11));
  EXPECT_FALSE(python_version_from_filename("/usr/bin/python3"));
  EXPECT_FALSE(python_version_from_filename("/python3.9/lib/libc.so.6"));
  EXPECT_FALSE(python_version_from_filename("libpython3..so"));
  EXPECT_FALSE(python_version_from_filename(""));
}

std::string temp_file(const std::string& bytes) {
  char name[] = "/tmp/pyprofd_elf_XXXXXX";
  int fd = mkstemp(name);
  if (fd < 0) return "";
  bool ok = write(fd, bytes.data(), bytes.size()) == ssize_t(bytes.size());
  close(fd);
  return ok ? name : "";
}

TEST(ElfImage, RejectsMissingAndNonElf) {
  std::string err;
  EXPECT_FALSE(ElfImage::open("/nonexistent/pyprofd", &err));
  EXPECT_FALSE(err.empty());
  std::string f = temp_file("not an elf file at all\n");
  ASSERT_FALSE(f.empty());
  err.clear();
  EXPECT_FALSE(ElfImage::open(f, &err));
  EXPECT_FALSE(err.empty());
  unlink(f.c_str());
}

// Truncated copies of a real library: open may fail, but nothing may crash, and whatever is
// returned must stay inside the file.
TEST(ElfImage, TruncatedFilesAreSafe) {
  const char* src = "/usr/bin/python3.11";
  std::ifstream in(src, std::ios::binary);
  if (!in) GTEST_SKIP() << "interpreter not installed: " << src;
  std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  for (size_t cut : {size_t(16), size_t(64), size_t(200), size_t(4096), all.size() / 2, all.size() - 100}) {
    std::string f = temp_file(all.substr(0, cut));
    ASSERT_FALSE(f.empty());
    auto img = ElfImage::open(f, nullptr);
    if (img) {
      img->symbol("_PyRuntime");
      img->find_python_version();
      char b[16];
      img->read_vaddr(0x400000, b, sizeof(b));
      img->load_bias(0x400000, 0);
      for (const auto& s : img->segments()) EXPECT_LE(s.offset + s.filesz, cut);
    }
    unlink(f.c_str());
  }
}

TEST(ElfImage, ReadVaddrAndBiasBounds) {
  const char* src = "/usr/bin/python3.11";
  auto img = ElfImage::open(src, nullptr);
  if (!img) GTEST_SKIP() << "interpreter not installed: " << src;
  char b[8];
  EXPECT_FALSE(img->read_vaddr(UINT64_MAX - 2, b, sizeof(b)));  // wraps
  EXPECT_FALSE(img->read_vaddr(0, b, sizeof(b)));               // below every segment
  EXPECT_TRUE(img->read_vaddr(0x400000, b, 4));                 // ELF header, first PT_LOAD
  EXPECT_EQ(std::string(b + 1, 3), "ELF");
  EXPECT_FALSE(img->load_bias(0x400000, 0x7fffffff000));        // offset in no segment
  EXPECT_EQ(img->load_bias(0x400000, 0), 0u);
}

}  // namespace
}  // namespace pyprofd
