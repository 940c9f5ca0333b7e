#include "tools/daemon_budget.h"

#include <algorithm>
#include <cmath>

namespace pyprofd::cli {

double CpuBudget::update(int64_t cpu_ns, int64_t now_ns) {
  if (max_percent_ <= 0) return 0;
  if (last_cpu_ < 0) {
    last_cpu_ = cpu_ns;
    last_at_ = now_ns;
    return 0;
  }
  if (now_ns - last_at_ < kPeriodNs) return 0;
  double used = 100.0 * static_cast<double>(cpu_ns - last_cpu_) / static_cast<double>(now_ns - last_at_);
  last_cpu_ = cpu_ns;
  last_at_ = now_ns;
  double next = rate_;
  // The cost is roughly proportional to the rate: aim a little under the budget; rise
  // slowly (a quarter per step) so a burst of attaches does not make it oscillate.
  if (used > max_percent_) next = rate_ * std::max(0.1, 0.9 * max_percent_ / used);
  else if (used < 0.7 * max_percent_) next = rate_ * 1.25;
  next = std::clamp(next, 1.0, max_rate_);
  if (std::abs(next - rate_) < 0.01 * rate_) return 0;
  rate_ = next;
  return rate_;
}

}  // namespace pyprofd::cli
