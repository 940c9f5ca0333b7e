#include "exporters/dump_json.h"

#include <nlohmann/json.hpp>

namespace pyprofd {

namespace {

nlohmann::json frames_json(const std::vector<SnapshotFrame>& frames) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& f : frames) {
    out.push_back({{"function", f.function}, {"file", f.file}, {"line", f.line}, {"first_line", f.first_line}});
    if (f.native) out.back()["native"] = true;
  }
  return out;
}

nlohmann::json thread_json(const ThreadSnapshot& t) {
  nlohmann::json jt;
  jt["native_thread_id"] = t.native_id ? nlohmann::json(t.native_id) : nlohmann::json(nullptr);
  jt["thread_id"] = t.thread_id;
  jt["name"] = t.name ? nlohmann::json(*t.name) : nlohmann::json(nullptr);
  jt["holds_gil"] = t.holds_gil;
  jt["active"] = t.active;
  jt["torn"] = t.torn;
  jt["frames"] = frames_json(t.frames);
  if (!t.native_error.empty()) jt["native_error"] = t.native_error;
  return jt;
}

nlohmann::json task_json(const TaskSnapshot& t) {
  nlohmann::json jt{{"name", t.name}, {"state", t.state}, {"running", t.running},
                    {"awaiting", t.awaiting.empty() ? nlohmann::json(nullptr) : nlohmann::json(t.awaiting)},
                    {"thread", t.thread ? nlohmann::json(t.thread) : nlohmann::json(nullptr)},
                    {"awaits", t.awaits}, {"awaited_by", t.awaited_by}};
  jt["frames"] = frames_json(t.frames);
  return jt;
}

}  // namespace

std::string dump_json(const ProcessSnapshot& s) {
  nlohmann::json j;
  j["pid"] = s.pid;
  j["python_version"] = s.python_version;
  j["executable"] = s.command_line;
  j["image"] = s.image_path;
  if (s.native) j["native_pauses"] = s.native_pauses;
  j["threads"] = nlohmann::json::array();
  for (const auto& t : s.threads) j["threads"].push_back(thread_json(t));
  if (s.has_tasks) {
    j["tasks"] = nlohmann::json::array();
    for (const auto& t : s.tasks) j["tasks"].push_back(task_json(t));
  }
  // Names read from the target may hold invalid UTF-8: replaced, not thrown on.
  return j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

}  // namespace pyprofd
