#include "exporters/atomic_file.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <set>
#include <sstream>

namespace fs = std::filesystem;

namespace pyprofd {
namespace {

class AtomicFile : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/pyprofd_atomic_XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    chmod(dir_.c_str(), 0700);
    fs::remove_all(dir_);
  }
  std::set<std::string> names() const {
    std::set<std::string> out;
    for (const auto& e : fs::directory_iterator(dir_)) out.insert(e.path().filename().string());
    return out;
  }
  static std::string read(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    std::stringstream s;
    s << f.rdbuf();
    return s.str();
  }
  std::string dir_;
};

TEST_F(AtomicFile, WritesAndReplaces) {
  const std::string path = dir_ + "/out.pstats";
  const std::string bytes("a\0b\xff", 4);
  std::string error;
  ASSERT_TRUE(write_file_atomic(path, bytes, &error)) << error;
  EXPECT_EQ(read(path), bytes);
  ASSERT_TRUE(write_file_atomic(path, "second", &error)) << error;
  EXPECT_EQ(read(path), "second");
  ASSERT_TRUE(write_file_atomic(path, "", &error)) << error;
  EXPECT_EQ(read(path), "");
  EXPECT_EQ(names(), std::set<std::string>{"out.pstats"});  // no temp file left
}

TEST_F(AtomicFile, MissingDirFails) {
  const std::string path = dir_ + "/nope/out.pstats";
  std::string error;
  EXPECT_FALSE(write_file_atomic(path, "x", &error));
  EXPECT_NE(error.find(path), std::string::npos) << error;
  EXPECT_NE(error.find("No such file or directory"), std::string::npos) << error;
  EXPECT_FALSE(check_writable_dir(path, &error));
  EXPECT_NE(error.find(dir_ + "/nope"), std::string::npos) << error;
  EXPECT_TRUE(names().empty());
}

TEST_F(AtomicFile, PathUnderARegularFileFails) {
  // Root may write anywhere, but nobody can create a file under a file.
  std::string error;
  EXPECT_FALSE(write_file_atomic("/etc/hostname/x", "x", &error));
  EXPECT_NE(error.find("/etc/hostname/x"), std::string::npos) << error;
  EXPECT_NE(error.find("Not a directory"), std::string::npos) << error;
  EXPECT_FALSE(check_writable_dir("/etc/hostname/x", &error));
  EXPECT_NE(error.find("Not a directory"), std::string::npos) << error;
}

TEST_F(AtomicFile, TargetIsADirectoryRemovesTemp) {
  // The rename fails after the temp file was written: it must be removed.
  fs::create_directory(dir_ + "/out");
  std::ofstream(dir_ + "/out/keep") << "x";
  std::string error;
  EXPECT_FALSE(write_file_atomic(dir_ + "/out", "data", &error));
  EXPECT_NE(error.find(dir_ + "/out"), std::string::npos) << error;
  EXPECT_EQ(names(), std::set<std::string>{"out"});
  EXPECT_FALSE(check_writable_dir(dir_ + "/out", &error));
  EXPECT_FALSE(check_writable_dir(dir_ + "/", &error));
}

TEST_F(AtomicFile, CheckWritableDirAcceptsGoodPaths) {
  std::string error;
  EXPECT_TRUE(check_writable_dir(dir_ + "/new.pstats", &error)) << error;
  EXPECT_TRUE(names().empty());  // the probe file is gone
  char cwd[4096];
  ASSERT_NE(getcwd(cwd, sizeof cwd), nullptr);
  ASSERT_EQ(chdir(dir_.c_str()), 0);
  EXPECT_TRUE(check_writable_dir("relative.pstats", &error)) << error;
  ASSERT_EQ(chdir(cwd), 0);
}

TEST_F(AtomicFile, PrivateModeWhateverTheUmask) {
  const std::string path = dir_ + "/out.pstats";
  mode_t old = umask(0);  // even a permissive umask gives 0600
  std::string error;
  bool ok = write_file_atomic(path, "x", &error);
  umask(old);
  ASSERT_TRUE(ok) << error;
  struct stat st;
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
}

TEST_F(AtomicFile, SymlinkAtThePathIsReplacedNotFollowed) {
  const std::string victim = dir_ + "/victim";
  std::ofstream(victim) << "precious";
  const std::string path = dir_ + "/out.pstats";
  ASSERT_EQ(symlink(victim.c_str(), path.c_str()), 0);
  std::string error;
  ASSERT_TRUE(write_file_atomic(path, "profile", &error)) << error;
  EXPECT_EQ(read(victim), "precious");
  struct stat st;
  ASSERT_EQ(lstat(path.c_str(), &st), 0);
  EXPECT_TRUE(S_ISREG(st.st_mode));
  EXPECT_EQ(read(path), "profile");
}

TEST_F(AtomicFile, SymlinksAtTheTempNamesAreSkipped) {
  // This process's next temp names (counter 0..49; create_temp tries 100 names).
  const std::string victim = dir_ + "/victim";
  std::ofstream(victim) << "precious";
  for (int n = 0; n < 50; ++n) {
    std::string temp = dir_ + "/.out.pstats.tmp." + std::to_string(getpid()) + "." + std::to_string(n);
    ASSERT_EQ(symlink(victim.c_str(), temp.c_str()), 0);
  }
  std::string error;
  ASSERT_TRUE(write_file_atomic(dir_ + "/out.pstats", "profile", &error)) << error;
  EXPECT_EQ(read(victim), "precious");
  EXPECT_EQ(read(dir_ + "/out.pstats"), "profile");
}

// A read-only folder stops only non-root users, so as root `check` runs in a
// child that drops to `nobody`. Returns 1 if check() held, 0 if not, -1 on error.
int as_nobody(const std::function<bool()>& check) {
  if (geteuid() != 0) return check() ? 1 : 0;
  pid_t pid = fork();
  if (pid == 0) {
    if (setgid(65534) != 0 || setuid(65534) != 0) _exit(2);
    _exit(check() ? 1 : 0);
  }
  int status = 0;
  if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) > 1) return -1;
  return WEXITSTATUS(status);
}

TEST_F(AtomicFile, ReadOnlyDirIsRefusedForNonRoot) {
  const std::string path = dir_ + "/out.pstats";
  ASSERT_EQ(chmod(dir_.c_str(), 0555), 0);
  EXPECT_EQ(as_nobody([&] { return check_writable_dir(path, nullptr); }), 0);
  EXPECT_EQ(as_nobody([&] {
              std::string error;
              return !write_file_atomic(path, "x", &error) && error.find(path) != std::string::npos &&
                     error.find("Permission denied") != std::string::npos;
            }),
            1);
  ASSERT_EQ(chmod(dir_.c_str(), 0777), 0);
  EXPECT_EQ(as_nobody([&] { return check_writable_dir(path, nullptr); }), 1);
  EXPECT_TRUE(names().empty());
}

}  // namespace
}  // namespace pyprofd
