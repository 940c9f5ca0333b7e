#include "exporters/collapsed.h"

#include <map>
#include <string_view>

#include "exporters/marshal_writer.h"

namespace pyprofd {
namespace {

// Keeps a frame from splitting into two frames or two lines.
std::string clean(std::string_view s) {
  std::string out = sanitize_utf8(s);
  for (char& c : out) {
    if (c == ';') c = ',';
    else if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = ' ';
  }
  return out;
}

std::string frame_text(const FunctionKey& f, int line) {
  if (f.file == "~") return clean(f.name);
  return clean(f.name) + " (" + clean(f.file) + ":" + std::to_string(line) + ")";
}

}  // namespace

std::string export_collapsed(const Profile& p) {
  std::map<StackFrame, std::string> text_of;  // each frame is rendered once
  std::map<std::string, uint64_t> counts;     // sorted and merged by the line's text
  std::string line;
  for (const auto& s : p.stacks) {
    if (!s.usable(p.functions.size())) continue;
    line.clear();
    for (const auto& f : s.frames) {
      auto it = text_of.find(f);
      if (it == text_of.end()) it = text_of.emplace(f, frame_text(p.functions[f.function], f.line)).first;
      if (!line.empty()) line += ';';
      line += it->second;
    }
    counts[line] += s.samples;
  }
  std::string out;
  for (const auto& [stack, n] : counts) {
    out += stack;
    out += ' ';
    out += std::to_string(n);
    out += '\n';
  }
  return out;
}

}  // namespace pyprofd
