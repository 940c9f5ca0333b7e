// A per-request time cap for cpp-httplib's server. Its timeouts (0.11) are per recv/send,
// so a client that trickles a byte every few seconds would hold a pool thread for ever.
// This task queue runs each connection on an httplib::ThreadPool and shuts the
// connection's socket down once it has spent `cap` sending a request (line, headers,
// body) and reading the previous answer; the time a handler itself takes (the wait of
// /debug/pprof/profile?seconds=) is not counted: handlers hold a HandlerRunning. When the
// server stops, every client has kStopGrace left, so a slow one cannot hold up the exit.
#pragma once
#include <httplib.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <thread>

namespace pyprofd::cli {

class HttpDeadlines : public httplib::TaskQueue {
 public:
  using Clock = std::chrono::steady_clock;

  // port: the server's bound port (its accepted sockets are found by it).
  HttpDeadlines(size_t threads, int port, Clock::duration cap);
  ~HttpDeadlines() override;

  void enqueue(std::function<void()> fn) override;
  void shutdown() override;

  // Held by a handler on its pool thread: the connection's clock stops while it runs
  // and restarts, with the whole cap, when it ends (for the answer and the next request).
  class HandlerRunning {
   public:
    HandlerRunning();
    ~HandlerRunning();
  };

 private:
  struct Connection {
    int fd = -1;        // our duplicate of the socket (-1: not found, not capped)
    uint64_t inode = 0;
    Clock::time_point deadline;
    bool paused = false;
    bool cut = false;
  };

  int find_accepted(uint64_t* inode) const;
  Clock::duration allowance() const { return closing_ ? std::min(cap_, kStopGrace) : cap_; }
  void set_paused(uint64_t id, bool paused);
  void forget(uint64_t id);
  void watch();

  static constexpr Clock::duration kStopGrace = std::chrono::seconds(2);

  httplib::ThreadPool pool_;
  const int port_;
  const Clock::duration cap_;
  std::mutex mu_;
  std::condition_variable changed_;
  std::map<uint64_t, Connection> connections_;
  uint64_t next_id_ = 0;
  bool closing_ = false;   // the server stops: kStopGrace, not the whole cap
  bool stopping_ = false;  // the watchdog ends
  std::thread watchdog_;
};

}  // namespace pyprofd::cli
