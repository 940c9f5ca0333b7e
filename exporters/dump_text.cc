#include "exporters/dump_text.h"

#include <sstream>

namespace pyprofd {

namespace {

std::string image_name(const std::string& path) {
  auto slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

std::string thread_state(const ThreadSnapshot& t) {
  return t.active ? (t.holds_gil ? "active+gil" : "active") : (t.holds_gil ? "idle+gil" : "idle");
}

void write_frames(std::ostream& out, const std::vector<SnapshotFrame>& frames) {
  for (const auto& f : frames) {
    out << "    " << f.function;
    // A native frame without DWARF has no file: its name says the library.
    if (!f.native || !f.file.empty()) out << " (" << f.file << ":" << f.line << ")";
    out << "\n";
  }
}

void write_thread(std::ostream& out, const ThreadSnapshot& t) {
  std::ostringstream id;
  if (t.native_id) id << t.native_id; else id << "0x" << std::hex << t.thread_id;
  out << "\nThread " << id.str() << " (" << thread_state(t) << ")";
  if (t.name) out << ": \"" << *t.name << "\"";
  out << "\n";
  write_frames(out, t.frames);
  if (t.torn) out << "    ... (stack was changing; partial)\n";
  if (!t.native_error.empty()) out << "    (no native frames: " << t.native_error << ")\n";
}

std::string join(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

void write_task(std::ostream& out, const TaskSnapshot& t) {
  out << "\nTask \"" << t.name << "\" (" << t.state << ")";
  if (t.awaits.size() > 1) out << " awaiting " << join(t.awaits);
  else if (!t.awaiting.empty()) out << " awaiting " << t.awaiting;
  if (!t.awaited_by.empty()) out << ", awaited by " << join(t.awaited_by);
  out << "\n";
  write_frames(out, t.frames);
}

// Tasks grouped under the thread that runs their loop (in thread order), then those
// whose loop is not running.
void write_tasks(std::ostream& out, const ProcessSnapshot& s) {
  out << "\nasyncio tasks: " << s.tasks.size() << "\n";
  auto group = [&](uint64_t tid, const std::string& title) {
    size_t n = 0;
    for (const auto& t : s.tasks) n += t.thread == tid;
    if (!n) return;
    out << "\n" << title << ": " << n << (n == 1 ? " task\n" : " tasks\n");
    for (const auto& t : s.tasks)
      if (t.thread == tid) write_task(out, t);
  };
  for (const auto& th : s.threads) {
    if (!th.native_id) continue;
    std::string title = "Tasks on thread " + std::to_string(th.native_id);
    if (th.name) title += " \"" + *th.name + "\"";
    group(th.native_id, title);
  }
  group(0, "Tasks whose loop is not running");
}

}  // namespace

std::string dump_text(const ProcessSnapshot& s) {
  std::ostringstream out;
  out << "Process " << s.pid << ": " << s.command_line << "\n";
  out << "Python v" << s.python_version << " (" << image_name(s.image_path) << ")\n";
  for (const auto& t : s.threads) write_thread(out, t);
  if (s.has_tasks) write_tasks(out, s);
  return out.str();
}

}  // namespace pyprofd
