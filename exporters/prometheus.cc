#include "exporters/prometheus.h"

#include <cstdio>

namespace pyprofd {

namespace {

void metric(std::string* out, const char* name, const char* type, const char* help, double value) {
  char line[512];
  std::snprintf(line, sizeof line, "# HELP %s %s\n# TYPE %s %s\n%s %.17g\n", name, help, name, type, name, value);
  *out += line;
}

}  // namespace

std::string export_prometheus(const DaemonMetrics& m) {
  std::string out;
  metric(&out, "pyprofd_samples_total", "counter", "Thread stacks recorded.", static_cast<double>(m.samples));
  metric(&out, "pyprofd_invalid_samples_total", "counter", "Torn or unreadable stacks dropped.",
         static_cast<double>(m.invalid_samples));
  metric(&out, "pyprofd_attach_failures_total", "counter", "Processes that could not be attached.",
         static_cast<double>(m.attach_failures));
  metric(&out, "pyprofd_windows_written_total", "counter", "Profile windows written to the output directory.",
         static_cast<double>(m.windows_written));
  metric(&out, "pyprofd_window_write_failures_total", "counter",
         "Window files that could not be written at first (kept in memory and tried again).",
         static_cast<double>(m.window_write_failures));
  metric(&out, "pyprofd_windows_pending", "gauge", "Window files kept in memory, waiting to be written.",
         static_cast<double>(m.windows_pending));
  metric(&out, "pyprofd_window_files_dropped_total", "counter",
         "Waiting window files dropped, oldest first, beyond the 64 MiB memory bound.",
         static_cast<double>(m.window_files_dropped));
  metric(&out, "pyprofd_ticks_total", "counter", "Sampling ticks.", static_cast<double>(m.ticks));
  metric(&out, "pyprofd_targets_attached", "gauge", "Python processes being sampled.",
         static_cast<double>(m.targets_attached));
  metric(&out, "pyprofd_sampling_rate_hertz", "gauge", "Sampling ticks per second achieved.", m.sampling_rate_hz);
  metric(&out, "pyprofd_cpu_seconds_total", "counter", "CPU time (user and system) used by pyprofd itself.",
         m.cpu_seconds);
  metric(&out, "pyprofd_resident_memory_bytes", "gauge", "Resident memory of pyprofd itself.",
         static_cast<double>(m.rss_bytes));
  metric(&out, "pyprofd_pushes_sent_total", "counter", "Windows delivered to the --push backend.",
         static_cast<double>(m.pushes_sent));
  metric(&out, "pyprofd_pushes_failed_total", "counter", "Failed push attempts (each retry counts).",
         static_cast<double>(m.pushes_failed));
  metric(&out, "pyprofd_pushes_dropped_total", "counter", "Windows dropped, oldest first, from a full spool.",
         static_cast<double>(m.pushes_dropped));
  metric(&out, "pyprofd_spool_bytes", "gauge", "Windows waiting in the push spool on disk.",
         static_cast<double>(m.spool_bytes));
  metric(&out, "pyprofd_idle_process_ticks_skipped_total", "counter",
         "cpu mode: process ticks skipped because no thread of the process was on a CPU.",
         static_cast<double>(m.idle_skips));
  metric(&out, "pyprofd_idle_process_ticks_skipped_by_switch_records_total", "counter",
         "Of those, the ones known from context-switch records (perf) rather than /proc.",
         static_cast<double>(m.idle_skips_by_records));
  metric(&out, "pyprofd_native_stacks_merged_total", "counter",
         "Native stacks merged with their Python frames (--native).", static_cast<double>(m.native_merged));
  metric(&out, "pyprofd_native_stacks_torn_total", "counter",
         "Native stacks dropped because they did not pair with the Python frames (--native).",
         static_cast<double>(m.native_torn));
  metric(&out, "pyprofd_native_stacks_unavailable_total", "counter",
         "Thread samples dropped for want of a native stack copy (--native).", static_cast<double>(m.native_unavailable));
  metric(&out, "pyprofd_native_thread_pauses_total", "counter",
         "Threads stopped briefly (ptrace) to read their native stacks (--native-pause).",
         static_cast<double>(m.native_pauses));
  return out;
}

}  // namespace pyprofd
