#include "exporters/atomic_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>

namespace pyprofd {
namespace {

constexpr mode_t kFileMode = 0600;

std::string dir_of(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

std::string base_of(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

bool fail(std::string* error, const std::string& what, const std::string& path, int err) {
  if (error) *error = what + " " + path + ": " + std::strerror(err);
  return false;
}

// Creates a fresh hidden file in `dir` named after `base`; pid + counter +
// retry on EEXIST keep names unique across threads and processes. O_EXCL and
// O_NOFOLLOW: a file or symlink planted at the name is skipped, never opened
// through. Mode 0600: a profile shows command lines, paths and thread names.
int create_temp(const std::string& dir, const std::string& base, std::string* temp_path) {
  static std::atomic<unsigned> counter{0};
  for (int attempt = 0; attempt < 100; ++attempt) {
    *temp_path = dir + "/." + base + ".tmp." + std::to_string(getpid()) + "." +
                 std::to_string(counter.fetch_add(1));
    int fd = open(temp_path->c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, kFileMode);
    if (fd >= 0 || errno != EEXIST) return fd;
  }
  errno = EEXIST;
  return -1;
}

bool write_all(int fd, const std::string& bytes) {
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

}  // namespace

bool write_file_atomic(const std::string& path, const std::string& bytes, std::string* error) {
  const std::string dir = dir_of(path);
  std::string temp;
  int fd = create_temp(dir, base_of(path), &temp);
  if (fd < 0) return fail(error, "cannot create a temporary file for", path, errno);

  const char* step = nullptr;
  if (!write_all(fd, bytes)) step = "cannot write";
  else if (fsync(fd) != 0) step = "cannot fsync";
  int err = errno;
  if (close(fd) != 0 && !step) {
    step = "cannot close";
    err = errno;
  }
  if (!step && rename(temp.c_str(), path.c_str()) != 0) {
    step = "cannot rename the temporary file to";
    err = errno;
  }
  if (step) {
    unlink(temp.c_str());
    return fail(error, step, path, err);
  }
  // Persist the rename itself; a folder that cannot be fsynced is not an error.
  int dfd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    fsync(dfd);
    close(dfd);
  }
  return true;
}

bool check_writable_dir(const std::string& path, std::string* error) {
  if (path.empty() || path.back() == '/') return fail(error, "output path names a folder, not a file:", path, EISDIR);
  const std::string dir = dir_of(path);
  struct stat st;
  if (stat(dir.c_str(), &st) != 0) return fail(error, "output folder", dir, errno);
  if (!S_ISDIR(st.st_mode)) return fail(error, "output folder", dir, ENOTDIR);
  if (stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) return fail(error, "output path", path, EISDIR);
  std::string probe;
  int fd = create_temp(dir, base_of(path), &probe);
  if (fd < 0) return fail(error, "output folder is not writable:", dir, errno);
  close(fd);
  unlink(probe.c_str());
  return true;
}

}  // namespace pyprofd
