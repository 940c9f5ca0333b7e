// What the daemon reports on /metrics: plain numbers, filled by the daemon and
// printed by exporters/prometheus. Counters only grow over the daemon's life.
#pragma once
#include <cstdint>

namespace pyprofd {

struct DaemonMetrics {
  uint64_t samples = 0;           // counter: thread stacks recorded
  uint64_t invalid_samples = 0;   // counter: torn or unreadable stacks dropped
  uint64_t attach_failures = 0;   // counter: processes that could not be attached
  uint64_t windows_written = 0;   // counter: windows written to --dir
  uint64_t window_write_failures = 0;  // counter: window files that could not be written (each retry not counted)
  uint64_t windows_pending = 0;   // gauge: window files kept in memory to be written again
  uint64_t window_files_dropped = 0;  // counter: pending files dropped (memory bound)
  uint64_t ticks = 0;             // counter: sampling ticks
  uint64_t idle_skips = 0;        // counter: cpu mode, process ticks skipped with nothing on a CPU
  uint64_t idle_skips_by_records = 0;  // counter: ... of them known from context-switch records
  uint64_t targets_attached = 0;  // gauge: processes sampled now
  double sampling_rate_hz = 0;    // gauge: ticks per second achieved
  double cpu_seconds = 0;         // counter: the daemon's own CPU (user + system)
  uint64_t rss_bytes = 0;         // gauge: the daemon's resident memory
  // --push
  uint64_t pushes_sent = 0;       // counter: windows delivered
  uint64_t pushes_failed = 0;     // counter: failed attempts (each retry counts)
  uint64_t pushes_dropped = 0;    // counter: windows dropped from a full spool
  uint64_t spool_bytes = 0;       // gauge: windows waiting on disk
  // --native
  uint64_t native_merged = 0;       // counter: native stacks merged with their Python frames
  uint64_t native_torn = 0;         // counter: native and Python stacks that did not pair (dropped)
  uint64_t native_unavailable = 0;  // counter: threads with no native copy at a tick (dropped)
  uint64_t native_pauses = 0;       // counter: threads stopped (ptrace) to read their native stacks
};

}  // namespace pyprofd
