#include "exporters/render.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <vector>

#include "model/text.h"

extern char** environ;

namespace pyprofd {
namespace {

bool read_file(const std::string& path, std::string* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::ostringstream ss;
  ss << in.rdbuf();
  *out = ss.str();
  return true;
}

bool write_file(const std::string& path, const std::string& bytes) {
  std::ofstream o(path, std::ios::binary | std::ios::trunc);
  o.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  return static_cast<bool>(o.flush());
}

// A private directory for dot's input, output and messages; removed on scope exit.
struct TempDir {
  std::string path;
  TempDir() {
    const char* base = getenv("TMPDIR");
    std::string tmpl = std::string(base && *base ? base : "/tmp") + "/pyprofd-dot-XXXXXX";
    std::vector<char> buf(tmpl.begin(), tmpl.end());
    buf.push_back('\0');
    if (mkdtemp(buf.data())) path = buf.data();
  }
  ~TempDir() {
    if (path.empty()) return;
    for (const char* f : {"/in.dot", "/out", "/err"}) unlink((path + f).c_str());
    rmdir(path.c_str());
  }
};

std::string first_line(const std::string& s) {
  std::string line = s.substr(0, s.find('\n'));
  return line.empty() ? "no message" : line;
}

}  // namespace

bool render_with_dot(const std::string& dot_source, const std::string& format, std::string* out,
                     std::string* error) {
  bool format_ok = !format.empty();
  for (char c : format)
    format_ok = format_ok && (isalnum(static_cast<unsigned char>(c)) || c == ':');
  if (!format_ok) {
    *error = "bad graphviz output format '" + format + "'";
    return false;
  }
  TempDir dir;
  if (dir.path.empty()) {
    *error = std::string("cannot create a temporary directory: ") + strerror(errno);
    return false;
  }
  const std::string in = dir.path + "/in.dot", outp = dir.path + "/out", errp = dir.path + "/err";
  if (!write_file(in, dot_source)) {
    *error = "cannot write " + in;
    return false;
  }

  // dot reads a file and writes a file; its messages go to a third, so no pipes can fill up.
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 2, errp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_adddup2(&actions, 2, 1);
  std::string tflag = "-T" + format;
  std::vector<char*> argv = {const_cast<char*>("dot"), tflag.data(), const_cast<char*>("-o"),
                             const_cast<char*>(outp.c_str()), const_cast<char*>(in.c_str()), nullptr};
  pid_t pid = 0;
  int rc = posix_spawnp(&pid, "dot", &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc == ENOENT) {
    *error = "graphviz's dot is not installed: apt-get install graphviz";
    return false;
  }
  if (rc != 0) {
    *error = std::string("cannot run graphviz's dot: ") + strerror(rc);
    return false;
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) {
      *error = std::string("waiting for dot: ") + strerror(errno);
      return false;
    }
  }
  std::string messages;
  read_file(errp, &messages);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    // glibc's posix_spawnp reports a missing program as exit status 127 on some versions.
    if (WIFEXITED(status) && WEXITSTATUS(status) == 127 && messages.empty()) {
      *error = "graphviz's dot is not installed: apt-get install graphviz";
    } else if (WIFEXITED(status)) {
      *error = "dot -T" + format + " failed (exit " + std::to_string(WEXITSTATUS(status)) +
               "): " + first_line(messages);
    } else {
      *error = "dot -T" + format + " was killed by signal " + std::to_string(WTERMSIG(status));
    }
    return false;
  }
  if (!read_file(outp, out) || out->empty()) {
    *error = "dot -T" + format + " wrote no output: " + first_line(messages);
    return false;
  }
  return true;
}

std::u32string display_code_points(std::string_view s) {
  std::u32string out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    char32_t cp;
    if (!next_code_point(s, &i, &cp)) {
      out.push_back(0xFFFD);
      continue;
    }
    const bool control = cp < 0x20 || (cp >= 0x7F && cp < 0xA0);
    const bool not_xml = (cp >= 0xD800 && cp <= 0xDFFF) || cp == 0xFFFE || cp == 0xFFFF;
    out.push_back(control || not_xml ? 0xFFFD : cp);
  }
  return out;
}

}  // namespace pyprofd
