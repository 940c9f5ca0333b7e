// A Python target for live unit tests: runs tests/targets/SCRIPT with the write end of a
// pipe (and an optional argument), waits for the one JSON line it writes once its objects
// exist, and kills it (by its PID) when the test ends.
#pragma once
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

namespace pyprofd {

class ReportTarget {
 public:
  ReportTarget() = default;
  ReportTarget(const ReportTarget&) = delete;
  ReportTarget& operator=(const ReportTarget&) = delete;

  bool start(const char* python, const char* script, const char* arg, std::string* err) {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) return *err = "pipe", false;
    std::string path = std::string(PYPROFD_SOURCE_DIR) + "/tests/targets/" + script;
    pid_ = fork();
    if (pid_ == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlive a crashed test
      int w = dup(fds[1]);                // the dup has no O_CLOEXEC: inherited by python
      std::string fd = std::to_string(w);
      execl(python, python, path.c_str(), fd.c_str(), arg, static_cast<char*>(nullptr));
      _exit(127);
    }
    close(fds[1]);
    std::string line;
    char c;
    pollfd p{fds[0], POLLIN, 0};
    while (poll(&p, 1, 60000) == 1 && read(fds[0], &c, 1) == 1 && c != '\n') line += c;
    close(fds[0]);
    if (line.empty()) return *err = "target wrote no report", false;
    report_ = nlohmann::json::parse(line);
    return true;
  }
  ~ReportTarget() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }
  pid_t pid() const { return pid_; }
  const nlohmann::json& report() const { return report_; }
  uint64_t addr(const char* key) const { return report_.at(key).get<uint64_t>(); }

 private:
  pid_t pid_ = -1;
  nlohmann::json report_;
};

}  // namespace pyprofd
