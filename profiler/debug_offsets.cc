#include "profiler/debug_offsets.h"

#include <algorithm>
#include <cstdio>
#include <cstring>

namespace pyprofd {
namespace {

// Collects the first problem; every value comes from the target, so each offset
// is bounded and must fit (with the width we read there) inside its struct.
class Checker {
 public:
  bool ok() const { return error_.empty(); }
  const std::string& error() const { return error_; }

  void fail(const std::string& msg) {
    if (error_.empty()) error_ = msg;
  }
  // A struct size: non-zero and below kMaxDebugStructSize.
  uint64_t size(const char* name, uint64_t v) {
    if (v == 0 || v > kMaxDebugStructSize) fail(std::string(name) + " = " + std::to_string(v) + " is not a sane size");
    return v;
  }
  // A field of `width` bytes at offset v, inside a struct of `limit` bytes.
  uint32_t field(const char* name, uint64_t v, uint64_t width, uint64_t limit) {
    if (v >= kMaxDebugOffset) {
      fail(std::string(name) + " = " + std::to_string(v) + " exceeds the offset bound " +
           std::to_string(kMaxDebugOffset));
      return 0;
    }
    if (v + width > limit) {
      fail(std::string(name) + " = " + std::to_string(v) + " does not fit in its struct (" +
           std::to_string(limit) + " bytes)");
      return 0;
    }
    return static_cast<uint32_t>(v);
  }

 private:
  std::string error_;
};

constexpr uint64_t kPtr = 8;

}  // namespace

namespace {

// The cookie, the version against the layout's, and the build kind; "" when they fit.
std::string check_header(const char* cookie, uint64_t version, uint64_t free_threaded, int mirror_minor,
                         const Layout& layout) {
  if (std::memcmp(cookie, kDebugCookie, sizeof kDebugCookie) != 0) return "cookie mismatch (expected \"xdebugpy\")";
  if (layout.major != 3 || layout.minor != mirror_minor)
    return "no mirror of the struct for " + layout.name() + " (this one is 3." + std::to_string(mirror_minor) + "'s)";
  const int major = static_cast<int>((version >> 24) & 0xff);
  const int minor = static_cast<int>((version >> 16) & 0xff);
  if (major != layout.major || minor != layout.minor) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(version));
    return std::string("version ") + buf + " does not match layout " + layout.name();
  }
  if (free_threaded != 0) return kFreeThreadedError;
  return "";
}

// Runtime, interpreter and thread state: the fields every mirror has under one name.
template <class D>
void apply_states(const D& d, Checker& c, Layout& l) {
  const uint64_t rt = c.size("runtime_state.size", d.runtime_state.size);
  l.rt_interpreters_head = c.field("runtime_state.interpreters_head", d.runtime_state.interpreters_head, kPtr, rt);

  const auto& is = d.interpreter_state;
  const uint64_t isz = c.size("interpreter_state.size", is.size);
  l.is_next = c.field("interpreter_state.next", is.next, kPtr, isz);
  l.is_threads_head = c.field("interpreter_state.threads_head", is.threads_head, kPtr, isz);
  l.is_modules = c.field("interpreter_state.imports_modules", is.imports_modules, kPtr, isz);
  l.is_gil_ptr = c.field("interpreter_state.ceval_gil", is.ceval_gil, kPtr, isz);
  // The GIL fields are given relative to the interpreter's own embedded _gil.
  const uint32_t gil = c.field("interpreter_state.gil_runtime_state", is.gil_runtime_state, 1, isz);
  if (is.gil_runtime_state_locked < gil || is.gil_runtime_state_holder < gil)
    c.fail("interpreter_state.gil_runtime_state_{locked,holder} lie before the GIL struct");
  l.gil_locked = c.field("gil locked", is.gil_runtime_state_locked - gil, 4, isz - gil);
  l.gil_last_holder = c.field("gil last_holder", is.gil_runtime_state_holder - gil, kPtr, isz - gil);

  const auto& ts = d.thread_state;
  l.ts_size = c.field("thread_state.size", c.size("thread_state.size", ts.size), 0, kMaxDebugOffset);
  l.ts_next = c.field("thread_state.next", ts.next, kPtr, l.ts_size);
  l.ts_interp = c.field("thread_state.interp", ts.interp, kPtr, l.ts_size);
  l.ts_frame = c.field("thread_state.current_frame", ts.current_frame, kPtr, l.ts_size);
  l.ts_thread_id = c.field("thread_state.thread_id", ts.thread_id, kPtr, l.ts_size);
  l.ts_native_thread_id = c.field("thread_state.native_thread_id", ts.native_thread_id, kPtr, l.ts_size);
  l.ts_datastack_chunk = c.field("thread_state.datastack_chunk", ts.datastack_chunk, kPtr, l.ts_size);
}

// Frames, code objects and the small objects the readers decode.
template <class D>
void apply_objects(const D& d, Checker& c, Layout& l) {
  // We read the fixed part of a frame: everything before localsplus.
  const auto& fr = d.interpreter_frame;
  const uint64_t fsz = c.size("interpreter_frame.size", fr.size);
  l.fr_size = c.field("interpreter_frame.localsplus", fr.localsplus, kPtr, fsz);
  l.fr_back = c.field("interpreter_frame.previous", fr.previous, kPtr, l.fr_size);
  l.fr_code = c.field("interpreter_frame.executable", fr.executable, kPtr, l.fr_size);
  l.fr_lasti = c.field("interpreter_frame.instr_ptr", fr.instr_ptr, kPtr, l.fr_size);
  l.fr_owner = c.field("interpreter_frame.owner", fr.owner, 1, l.fr_size);

  // We read a code object up to its instructions.
  const auto& co = d.code_object;
  const uint64_t csz = c.size("code_object.size", co.size);
  l.co_code_adaptive = c.field("code_object.co_code_adaptive", co.co_code_adaptive, 0, csz);
  l.co_size = l.co_code_adaptive;
  l.co_filename = c.field("code_object.filename", co.filename, kPtr, l.co_size);
  l.co_name = c.field("code_object.name", co.name, kPtr, l.co_size);
  l.co_qualname = c.field("code_object.qualname", co.qualname, kPtr, l.co_size);
  l.co_linetable = c.field("code_object.linetable", co.linetable, kPtr, l.co_size);
  l.co_firstlineno = c.field("code_object.firstlineno", co.firstlineno, 4, l.co_size);

  // ob_type is read from inside every object's header (16 bytes: refcount, type), and
  // from the copy of a code object, with co_flags (not in the debug offsets: the table's).
  const uint64_t header = std::min<uint64_t>(c.size("pyobject.size", d.pyobject.size), 16);
  l.ob_type = c.field("pyobject.ob_type", d.pyobject.ob_type, kPtr, header);
  c.field("pyobject.ob_type in a code object", l.ob_type, kPtr, l.co_size);
  c.field("code_object.co_flags", l.co_flags, 4, l.co_size);
  const uint64_t tsz = c.size("type_object.size", d.type_object.size);
  l.tp_name = c.field("type_object.tp_name", d.type_object.tp_name, kPtr, tsz);
  l.tp_flags = c.field("type_object.tp_flags", d.type_object.tp_flags, kPtr, tsz);
  const uint64_t tusz = c.size("tuple_object.size", d.tuple_object.size);
  l.tuple_items = c.field("tuple_object.ob_item", d.tuple_object.ob_item, 0, tusz);
  const uint64_t dsz = c.size("dict_object.size", d.dict_object.size);
  l.dict_keys = c.field("dict_object.ma_keys", d.dict_object.ma_keys, kPtr, dsz);
  l.dict_values = c.field("dict_object.ma_values", d.dict_object.ma_values, kPtr, dsz);
  const uint64_t bsz = c.size("bytes_object.size", d.bytes_object.size);
  l.bytes_size = c.field("bytes_object.ob_size", d.bytes_object.ob_size, kPtr, bsz);
  l.bytes_sval = c.field("bytes_object.ob_sval", d.bytes_object.ob_sval, 1, bsz);
  const uint64_t usz = c.size("unicode_object.size", d.unicode_object.size);
  l.str_state = c.field("unicode_object.state", d.unicode_object.state, 4, usz);
  l.str_length = c.field("unicode_object.length", d.unicode_object.length, kPtr, usz);
  l.str_ascii_size = c.field("unicode_object.asciiobject_size", d.unicode_object.asciiobject_size, 0, usz);
}

// The 3.15-only fields; the other mirrors have none that pyprofd uses beyond the common ones.
void apply_extra(const DebugOffsets313&, Checker&, Layout&) {}
void apply_extra(const DebugOffsets314&, Checker&, Layout&) {}
void apply_extra(const DebugOffsets315& d, Checker& c, Layout& l) {
  l.ts_base_frame = c.field("thread_state.base_frame", d.thread_state.base_frame, kPtr, l.ts_size);
}

template <class D>
bool apply(const D& d, int mirror_minor, Layout* layout, std::string* error) {
  auto fail = [&](const std::string& msg) {
    if (error) *error = "_Py_DebugOffsets: " + msg;
    return false;
  };
  if (layout == nullptr) return fail("no layout given");
  std::string bad = check_header(d.cookie, d.version, d.free_threaded, mirror_minor, *layout);
  if (bad == kFreeThreadedError) {  // unprefixed: attach names the build with it
    if (error) *error = bad;
    return false;
  }
  if (!bad.empty()) return fail(bad);
  Checker c;
  Layout l = *layout;
  apply_states(d, c, l);
  apply_objects(d, c, l);
  apply_extra(d, c, l);
  if (!c.ok()) return fail(c.error());
  *layout = l;
  return true;
}

template <class D>
bool read_and_apply(RemoteMemory& mem, uint64_t runtime_addr, int mirror_minor, Layout* layout,
                    std::string* error) {
  D d;
  if (!mem.read(runtime_addr, &d, sizeof d)) {
    if (error) {
      char buf[96];
      std::snprintf(buf, sizeof buf, "_Py_DebugOffsets: cannot read %zu bytes at 0x%llx", sizeof d,
                    static_cast<unsigned long long>(runtime_addr));
      *error = buf;
    }
    return false;
  }
  return apply(d, mirror_minor, layout, error);
}

}  // namespace

bool apply_debug_offsets(const DebugOffsets313& d, Layout* layout, std::string* error) {
  return apply(d, 13, layout, error);
}
bool apply_debug_offsets(const DebugOffsets314& d, Layout* layout, std::string* error) {
  return apply(d, 14, layout, error);
}
bool apply_debug_offsets(const DebugOffsets315& d, Layout* layout, std::string* error) {
  return apply(d, 15, layout, error);
}

bool apply_debug_offsets(RemoteMemory& mem, uint64_t runtime_addr, Layout* layout,
                         std::string* error) {
  struct { char cookie[8]; uint64_t version; } head{};
  if (runtime_addr == 0 || !mem.read(runtime_addr, &head, sizeof head)) {
    if (error) {
      char buf[96];
      std::snprintf(buf, sizeof buf, "_Py_DebugOffsets: cannot read %zu bytes at 0x%llx", sizeof head,
                    static_cast<unsigned long long>(runtime_addr));
      *error = buf;
    }
    return false;
  }
  if (std::memcmp(head.cookie, kDebugCookie, sizeof kDebugCookie) != 0) {
    if (error) *error = "_Py_DebugOffsets: cookie mismatch (expected \"xdebugpy\")";
    return false;
  }
  // The structure's own version picks the mirror: one for each version we know.
  const int major = static_cast<int>((head.version >> 24) & 0xff);
  const int minor = static_cast<int>((head.version >> 16) & 0xff);
  if (major == 3 && minor == 13) return read_and_apply<DebugOffsets313>(mem, runtime_addr, 13, layout, error);
  if (major == 3 && minor == 14) return read_and_apply<DebugOffsets314>(mem, runtime_addr, 14, layout, error);
  if (major == 3 && minor == 15) return read_and_apply<DebugOffsets315>(mem, runtime_addr, 15, layout, error);
  if (error) {
    char buf[160];
    std::snprintf(buf, sizeof buf,
                  "_Py_DebugOffsets: structure version 0x%llx (%d.%d) is not one pyprofd knows (3.13-3.15); "
                  "refusing to guess its layout",
                  static_cast<unsigned long long>(head.version), major, minor);
    *error = buf;
  }
  return false;
}

}  // namespace pyprofd
