// Prometheus text exposition (version 0.0.4) of the daemon's metrics: names
// pyprofd_*, a # HELP and # TYPE line each, counters ending in _total.
#pragma once
#include <string>

#include "model/daemon_metrics.h"

namespace pyprofd {

std::string export_prometheus(const DaemonMetrics& m);

}  // namespace pyprofd
