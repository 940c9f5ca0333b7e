// --max-cpu PERCENT: the daemon measures its own CPU (all threads) every 2 seconds and
// lowers the sampling rate when over the budget, raising it back (never above --rate)
// when well under. A pure controller: the caller measures and applies the rate.
#pragma once
#include <cstdint>

namespace pyprofd::cli {

class CpuBudget {
 public:
  CpuBudget(double max_percent, double max_rate_hz) : max_percent_(max_percent), max_rate_(max_rate_hz), rate_(max_rate_hz) {}

  // cpu_ns: the process's CPU time so far, now_ns: a monotonic clock. Returns the new
  // rate when it should change, 0 otherwise.
  double update(int64_t cpu_ns, int64_t now_ns);
  double rate() const { return rate_; }

 private:
  static constexpr int64_t kPeriodNs = 2000000000;
  double max_percent_, max_rate_, rate_;
  int64_t last_cpu_ = -1, last_at_ = 0;
};

}  // namespace pyprofd::cli
