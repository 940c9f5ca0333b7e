#include "tools/daemon_http.h"

#include <httplib.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>
#include <type_traits>

#include "exporters/formats.h"
#include "exporters/pprof.h"
#include "exporters/prometheus.h"
#include "profiler/clock.h"
#include "tools/http_deadline.h"
#include "tools/http_query.h"

namespace pyprofd::cli {

static_assert(std::is_same_v<HttpParams, httplib::Params>, "parse_http_query takes cpp-httplib's query");

namespace {

// /profile requests wait out their seconds on a pool thread: cap them below the pool's
// size so /metrics, /healthz and /recent always find a free thread.
constexpr int kMaxProfileRequests = 16;
constexpr size_t kHttpThreads = kMaxProfileRequests + 8;
// Every endpoint is a GET with a short query: a body is refused (413) past this size,
// and a client that sends nothing for kReadTimeoutS is disconnected (cpp-httplib also
// caps the request line and each header line at 8 KiB: 414/400).
constexpr size_t kMaxBodyBytes = 16 << 10;
constexpr time_t kReadTimeoutS = 5;
constexpr time_t kWriteTimeoutS = 10;
constexpr size_t kMaxRequestsPerConnection = 20;
// A client may take this long to send one request and read the answer before (timeouts
// being per recv) it is disconnected; PYPROFD_HTTP_REQUEST_SECONDS overrides it (tests).
constexpr double kRequestCapS = 30;

std::chrono::milliseconds request_cap() {
  const char* env = std::getenv("PYPROFD_HTTP_REQUEST_SECONDS");
  double s = env ? std::strtod(env, nullptr) : kRequestCapS;
  if (!(s >= 1 && s <= 3600)) s = kRequestCapS;
  return std::chrono::milliseconds(static_cast<int64_t>(s * 1000));
}

void reply_error(httplib::Response& res, int status, const std::string& message) {
  res.status = status;
  res.set_content(message + "\n", "text/plain; charset=utf-8");
}

const char* content_type(const std::string& format) {
  if (format == "pprof" || format == "pstats") return "application/octet-stream";
  if (format == "speedscope") return "application/json";
  if (format == "flamegraph") return "image/svg+xml";
  return "text/plain; charset=utf-8";
}

void send_profile(httplib::Response& res, const std::string& format, const Profile& p) {
  std::string bytes, err;
  if (format == "pprof") {
    bytes = export_pprof(p);  // an empty profile is still a valid answer
  } else if (!export_profile(format, p, ExportOptions{}, &bytes, &err)) {
    return reply_error(res, 503, err);
  }
  if (format == "pprof") res.set_header("Content-Disposition", "attachment; filename=\"profile.pb.gz\"");
  res.set_content(bytes, content_type(format));
}

uint64_t own_rss_bytes() {
  std::ifstream statm("/proc/self/statm");
  uint64_t size = 0, resident = 0;
  statm >> size >> resident;
  return resident * static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
}

}  // namespace

struct DaemonHttp::Impl {
  DaemonState* state;
  httplib::Server server;
  std::thread thread;
  std::atomic<int> profiles{0};  // open /profile requests
  int port = 0;                  // bound port: the deadline watchdog finds connections by it

  void profile(const HttpQuery& q, httplib::Response& res) {
    if (++profiles > kMaxProfileRequests) {
      --profiles;
      return reply_error(res, 429, "too many profile requests at once");
    }
    auto request = state->fanout.open_request(realtime_ns());
    {
      std::unique_lock<std::mutex> lock(state->mu);
      state->stopped.wait_for(lock, std::chrono::duration<double>(q.seconds), [this] { return state->stopping; });
    }
    state->fanout.close_request(request, realtime_ns());
    --profiles;
    send_profile(res, q.format, *request);
  }

  void recent(const HttpQuery& q, httplib::Response& res) {
    std::vector<std::shared_ptr<const Profile>> windows;
    {
      std::lock_guard<std::mutex> lock(state->mu);
      size_t n = std::min(state->windows.size(), q.windows);
      windows.assign(state->windows.end() - n, state->windows.end());
    }
    // Fewer completed windows than asked for (the daemon just started): the current
    // partial window stands in, so the answer comes at once rather than a 503.
    if (windows.size() < q.windows)
      windows.push_back(std::make_shared<const Profile>(state->fanout.current(realtime_ns())));
    send_profile(res, q.format, state->fanout.merge(windows));
  }

  void metrics(httplib::Response& res) {
    DaemonMetrics m;
    {
      std::lock_guard<std::mutex> lock(state->mu);
      m = state->metrics;
    }
    m.cpu_seconds = process_cpu_ns() / 1e9;
    m.rss_bytes = own_rss_bytes();
    res.set_content(export_prometheus(m), "text/plain; version=0.0.4; charset=utf-8");
  }

  void targets(httplib::Response& res) {
    std::map<pid_t, TargetInfo> targets;
    {
      std::lock_guard<std::mutex> lock(state->mu);
      targets = state->targets;
    }
    nlohmann::json out = nlohmann::json::array();
    for (const auto& [pid, t] : targets) {
      int64_t first = state->fanout.first_sample_of(pid);
      out.push_back({{"pid", pid}, {"command", t.command}, {"python_version", t.python_version}, {"state", t.state},
                     {"samples", state->fanout.samples_of(pid)},
                     {"first_sample", first ? nlohmann::json(first / 1e9) : nlohmann::json(nullptr)}});
    }
    res.set_content(out.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n", "application/json");
  }

  void healthz(httplib::Response& res) {
    if (state->sampling) res.set_content("ok\n", "text/plain");
    else reply_error(res, 503, "not sampling");
  }

  void serve(const httplib::Request& req, httplib::Response& res) {
    HttpDeadlines::HandlerRunning running;  // the wait of /profile is not the client's time
    HttpQuery q = parse_http_query(req.path, req.params);
    if (q.status != 200) return reply_error(res, q.status, q.error);
    switch (q.endpoint) {
      case HttpEndpoint::kProfile: return profile(q, res);
      case HttpEndpoint::kRecent: return recent(q, res);
      case HttpEndpoint::kMetrics: return metrics(res);
      case HttpEndpoint::kTargets: return targets(res);
      case HttpEndpoint::kHealthz: return healthz(res);
      case HttpEndpoint::kNone: return reply_error(res, 404, "not found");
    }
  }

  void routes() {
    server.new_task_queue = [this] { return new HttpDeadlines(kHttpThreads, port, request_cap()); };
    server.set_payload_max_length(kMaxBodyBytes);
    server.set_read_timeout(kReadTimeoutS, 0);
    server.set_write_timeout(kWriteTimeoutS, 0);
    server.set_keep_alive_timeout(kReadTimeoutS);
    server.set_keep_alive_max_count(kMaxRequestsPerConnection);
    for (size_t i = 0; kHttpPaths[i]; ++i)  // literal paths: no regex metacharacters
      server.Get(kHttpPaths[i], [this](const httplib::Request& q, httplib::Response& r) { serve(q, r); });
    server.set_logger([](const httplib::Request& q, const httplib::Response& r) {
      spdlog::debug("http {} {} -> {}", q.method, q.target, r.status);
    });
  }
};

DaemonHttp::DaemonHttp(DaemonState* state) : impl_(new Impl{state, {}, {}}) { impl_->routes(); }

DaemonHttp::~DaemonHttp() { stop(); }

int DaemonHttp::bind(const std::string& host, int port, std::string* error) {
  int bound = port == 0 ? impl_->server.bind_to_any_port(host) : (impl_->server.bind_to_port(host, port) ? port : -1);
  if (bound <= 0) {
    *error = "cannot listen on " + host + ":" + std::to_string(port) + " (address in use or not local)";
    return -1;
  }
  impl_->port = bound;
  return bound;
}

void DaemonHttp::start() {
  impl_->thread = std::thread([this] { impl_->server.listen_after_bind(); });
}

void DaemonHttp::stop() {
  if (!impl_->thread.joinable()) return;
  impl_->server.stop();
  impl_->thread.join();
}

}  // namespace pyprofd::cli
