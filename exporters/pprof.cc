#include "exporters/pprof.h"

#include <zlib.h>

#include <cmath>
#include <map>
#include <stdexcept>
#include <unordered_map>
#include <utility>
#include <vector>

#include "exporters/marshal_writer.h"  // sanitize_utf8
#include "exporters/profile.pb.h"

namespace pyprofd {
namespace {

namespace pb = perftools::profiles;

// Interns strings into out->string_table; index 0 is "" as the format requires.
class StringTable {
 public:
  explicit StringTable(pb::Profile* out) : out_(out) { id(""); }
  int64_t id(const std::string& s) {
    auto it = index_.find(s);
    if (it != index_.end()) return it->second;
    const int64_t i = out_->string_table_size();
    out_->add_string_table(s);
    index_.emplace(s, i);
    return i;
  }

 private:
  pb::Profile* out_;
  std::unordered_map<std::string, int64_t> index_;
};

void set_value_type(pb::ValueType* vt, StringTable* st, const char* type, const char* unit) {
  vt->set_type(st->id(type));
  vt->set_unit(st->id(unit));
}

// Proto3 strings must be strict UTF-8: libprotobuf refuses to parse anything else.
// sanitize_utf8 keeps encoded surrogates (marshal wants them; co_filename has them
// for undecodable bytes), so those become U+FFFD here too. After sanitize_utf8,
// 0xED is always a lead byte, and a second byte >= 0xA0 means a surrogate.
std::string strict_utf8(const std::string& s) {
  std::string u = sanitize_utf8(s);
  for (size_t i = 0; i + 2 < u.size(); ++i)
    if (static_cast<unsigned char>(u[i]) == 0xED && static_cast<unsigned char>(u[i + 1]) >= 0xA0)
      u.replace(i, 3, "\xEF\xBF\xBD");
  return u;
}

FunctionKey clean_key(const FunctionKey& k) { return {strict_utf8(k.name), strict_utf8(k.file), k.first_line}; }

SampleLabels clean_labels(const SampleLabels& l) {
  return {l.pid, l.thread_id, strict_utf8(l.thread_name), strict_utf8(l.task_name)};
}

void add_num_label(pb::Sample* s, StringTable* st, const char* key, int64_t num) {
  pb::Label* l = s->add_label();
  l->set_key(st->id(key));
  l->set_num(num);
}

void add_str_label(pb::Sample* s, StringTable* st, const char* key, const std::string& str) {
  if (str.empty()) return;
  pb::Label* l = s->add_label();
  l->set_key(st->id(key));
  l->set_str(st->id(str));
}

std::string gzip(const std::string& raw) {
  z_stream zs{};
  // windowBits 15 + 16 asks zlib for a gzip header and trailer instead of zlib's own.
  if (deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
    throw std::runtime_error("pprof: deflateInit2 failed");
  std::string out(deflateBound(&zs, raw.size()) + 32, '\0');  // +32: gzip header/trailer slack
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(raw.data()));
  zs.avail_in = static_cast<uInt>(raw.size());
  zs.next_out = reinterpret_cast<Bytef*>(&out[0]);
  zs.avail_out = static_cast<uInt>(out.size());
  const int rc = deflate(&zs, Z_FINISH);
  const size_t written = zs.total_out;
  deflateEnd(&zs);
  if (rc != Z_STREAM_END) throw std::runtime_error("pprof: deflate did not finish");
  out.resize(written);
  return out;
}

}  // namespace

std::string export_pprof(const Profile& p) {
  pb::Profile out;
  StringTable st(&out);
  const char* kind = p.mode == ProfileMode::kWall ? "wall" : "cpu";
  set_value_type(out.add_sample_type(), &st, "samples", "count");
  set_value_type(out.add_sample_type(), &st, kind, "nanoseconds");
  set_value_type(out.mutable_period_type(), &st, kind, "nanoseconds");
  out.set_period(p.rate_hz > 0 ? std::llround(1e9 / p.rate_hz) : 0);
  out.set_time_nanos(p.start_time_ns);
  out.set_duration_nanos(p.duration_ns);

  // Function ids, by cleaned key so duplicates in p.functions share one; 0 = not yet made.
  std::vector<uint64_t> function_id(p.functions.size(), 0);
  std::map<FunctionKey, uint64_t> function_by_key;
  auto function_of = [&](uint32_t index) {
    if (function_id[index]) return function_id[index];
    const FunctionKey key = clean_key(p.functions[index]);
    auto it = function_by_key.find(key);
    if (it == function_by_key.end()) {
      pb::Function* f = out.add_function();
      f->set_id(out.function_size());
      f->set_name(st.id(key.name));
      f->set_filename(st.id(key.file));
      f->set_start_line(key.first_line);
      it = function_by_key.emplace(key, f->id()).first;
    }
    return function_id[index] = it->second;
  };
  std::map<std::pair<uint64_t, int>, uint64_t> location_by_line;
  auto location_of = [&](const StackFrame& frame) {
    const auto key = std::make_pair(function_of(frame.function), frame.line);
    auto it = location_by_line.find(key);
    if (it != location_by_line.end()) return it->second;
    pb::Location* loc = out.add_location();
    loc->set_id(out.location_size());
    pb::Line* line = loc->add_line();
    line->set_function_id(key.first);
    line->set_line(key.second);
    location_by_line.emplace(key, loc->id());
    return loc->id();
  };

  // Stacks identical after mapping (same locations and labels) become one sample.
  std::map<std::pair<std::vector<uint64_t>, SampleLabels>, int> sample_index;
  std::vector<uint64_t> locations;
  for (const StackRecord& s : p.stacks) {
    if (s.samples == 0 && s.weight_ns == 0) continue;
    bool known = true;
    for (const StackFrame& f : s.frames) known = known && f.function < p.functions.size();
    if (!known) continue;
    locations.clear();
    for (auto f = s.frames.rbegin(); f != s.frames.rend(); ++f) locations.push_back(location_of(*f));
    SampleLabels labels = clean_labels(s.labels);
    auto [it, is_new] = sample_index.emplace(std::make_pair(locations, std::move(labels)), out.sample_size());
    if (!is_new) {
      pb::Sample* sample = out.mutable_sample(it->second);
      sample->set_value(0, sample->value(0) + static_cast<int64_t>(s.samples));
      sample->set_value(1, sample->value(1) + static_cast<int64_t>(s.weight_ns));
      continue;
    }
    pb::Sample* sample = out.add_sample();
    for (uint64_t id : locations) sample->add_location_id(id);
    sample->add_value(static_cast<int64_t>(s.samples));
    sample->add_value(static_cast<int64_t>(s.weight_ns));
    const SampleLabels& l = it->first.second;
    add_num_label(sample, &st, "pid", l.pid);
    add_num_label(sample, &st, "thread_id", static_cast<int64_t>(l.thread_id));
    add_str_label(sample, &st, "thread_name", l.thread_name);
    add_str_label(sample, &st, "task_name", l.task_name);
    for (const auto& [key, value] : p.labels) add_str_label(sample, &st, strict_utf8(key).c_str(), strict_utf8(value));
    auto process = p.process_labels.find(l.pid);
    if (process == p.process_labels.end()) continue;
    for (const auto& [key, value] : process->second)
      add_str_label(sample, &st, strict_utf8(key).c_str(), strict_utf8(value));
  }

  std::string raw;
  if (!out.SerializeToString(&raw)) throw std::runtime_error("pprof: protobuf serialization failed");
  return gzip(raw);
}

}  // namespace pyprofd
