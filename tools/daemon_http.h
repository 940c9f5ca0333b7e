// The daemon's HTTP server (cpp-httplib, its own thread pool): live profiles like Go's
// net/http/pprof, the recent windows, Prometheus metrics, health and targets.
// Handlers only read shared state under short locks; they never hold up sampling.
#pragma once
#include <memory>
#include <string>

#include "tools/daemon_state.h"

namespace pyprofd::cli {

class DaemonHttp {
 public:
  explicit DaemonHttp(DaemonState* state);
  ~DaemonHttp();

  // Binds host:port (port 0: any free one). The bound port, or -1 with *error.
  int bind(const std::string& host, int port, std::string* error);
  // Serves on its own threads until stop().
  void start();
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace pyprofd::cli
