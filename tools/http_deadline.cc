#include "tools/http_deadline.h"

#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <set>
#include <vector>

namespace pyprofd::cli {

namespace {

// The connection the current pool thread serves (set around each connection's task).
thread_local HttpDeadlines* current_queue = nullptr;
thread_local uint64_t current_id = 0;

// The local port of a TCP socket, -1 if it is not one.
int local_port(int fd) {
  sockaddr_storage a{};
  socklen_t len = sizeof(a);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) return -1;
  if (a.ss_family == AF_INET) return ntohs(reinterpret_cast<sockaddr_in*>(&a)->sin_port);
  if (a.ss_family == AF_INET6) return ntohs(reinterpret_cast<sockaddr_in6*>(&a)->sin6_port);
  return -1;
}

bool has_peer(int fd) {
  sockaddr_storage a{};
  socklen_t len = sizeof(a);
  return getpeername(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0;
}

}  // namespace

HttpDeadlines::HttpDeadlines(size_t threads, int port, Clock::duration cap)
    : pool_(threads), port_(port), cap_(cap), watchdog_([this] { watch(); }) {}

HttpDeadlines::~HttpDeadlines() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  changed_.notify_all();
  if (watchdog_.joinable()) watchdog_.join();
  for (auto& [id, c] : connections_)
    if (c.fd >= 0) close(c.fd);
}

// cpp-httplib hands over a closure, not the socket it has just accepted (on this, the
// listening thread): the one open socket on our port with a peer that is not yet known.
// Duplicated, so that a shutdown() can never reach a later socket given the same number.
int HttpDeadlines::find_accepted(uint64_t* inode) const {
  std::set<uint64_t> known;
  for (const auto& [id, c] : connections_) known.insert(c.inode);
  std::vector<std::pair<int, uint64_t>> found;
  DIR* dir = opendir("/proc/self/fd");
  if (!dir) return -1;
  while (dirent* e = readdir(dir)) {
    char* end = nullptr;
    long fd = std::strtol(e->d_name, &end, 10);
    struct stat st {};
    if (*end != '\0' || end == e->d_name || fd == dirfd(dir) || fstat(static_cast<int>(fd), &st) != 0) continue;
    if (!S_ISSOCK(st.st_mode) || known.count(st.st_ino)) continue;
    if (local_port(static_cast<int>(fd)) == port_ && has_peer(static_cast<int>(fd)))
      found.emplace_back(static_cast<int>(fd), st.st_ino);
  }
  closedir(dir);
  if (found.size() != 1) return -1;
  *inode = found[0].second;
  return fcntl(found[0].first, F_DUPFD_CLOEXEC, 0);
}

void HttpDeadlines::enqueue(std::function<void()> fn) {
  uint64_t id = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    Connection c;
    c.fd = find_accepted(&c.inode);
    if (c.fd < 0) spdlog::warn("http: cannot find an accepted socket; its request time is not capped");
    c.deadline = Clock::now() + allowance();
    id = next_id_++;
    connections_[id] = c;
  }
  changed_.notify_all();
  pool_.enqueue([this, id, fn = std::move(fn)] {
    current_queue = this;
    current_id = id;
    fn();  // serves the connection, then shuts down and closes cpp-httplib's descriptor
    current_queue = nullptr;
    forget(id);
  });
}

void HttpDeadlines::shutdown() {
  {
    // The server is stopping: a client gets a short grace, not the whole cap, to finish
    // (a trickling one would otherwise hold the daemon's exit for up to the cap).
    std::lock_guard<std::mutex> lock(mu_);
    closing_ = true;
    for (auto& [id, c] : connections_) c.deadline = std::min(c.deadline, Clock::now() + allowance());
  }
  changed_.notify_all();
  pool_.shutdown();  // waits for the connections; the watchdog still cuts slow ones
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  changed_.notify_all();
  watchdog_.join();
}

void HttpDeadlines::set_paused(uint64_t id, bool paused) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = connections_.find(id);
    if (it == connections_.end()) return;
    it->second.paused = paused;
    it->second.deadline = Clock::now() + allowance();
  }
  changed_.notify_all();
}

void HttpDeadlines::forget(uint64_t id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = connections_.find(id);
  if (it == connections_.end()) return;
  if (it->second.fd >= 0) close(it->second.fd);
  connections_.erase(it);
}

// Sleeps until the earliest running deadline (no wake-ups while no request is pending).
void HttpDeadlines::watch() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    auto now = Clock::now();
    auto next = Clock::time_point::max();
    for (auto& [id, c] : connections_) {
      if (c.fd < 0 || c.paused || c.cut) continue;
      if (c.deadline > now) {
        next = std::min(next, c.deadline);
        continue;
      }
      ::shutdown(c.fd, SHUT_RDWR);  // the pool thread's recv/send returns at once
      c.cut = true;
      if (closing_) spdlog::info("http: stopping; disconnected a client still sending or reading");
      else spdlog::info("http: a client took over {:.0f} s on one request; disconnected",
                        std::chrono::duration<double>(cap_).count());
    }
    if (next == Clock::time_point::max()) changed_.wait(lock);
    else changed_.wait_until(lock, next);
  }
}

HttpDeadlines::HandlerRunning::HandlerRunning() {
  if (current_queue) current_queue->set_paused(current_id, true);
}

HttpDeadlines::HandlerRunning::~HandlerRunning() {
  if (current_queue) current_queue->set_paused(current_id, false);
}

}  // namespace pyprofd::cli
