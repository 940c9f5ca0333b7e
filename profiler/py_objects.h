// The remote-object layer: Python objects (str, bytes, int, C strings, bounded copies of
// tuple/list/dict/set, module and instance attributes) read from another process. Every
// address is untrusted: reads are checked, loops bounded, and garbage yields
// std::nullopt / false, never a crash.
//
// The decode_* functions work on an object's bytes already read (e.g. one buffer of a
// batched read), so a batched path and PyObjects' single reads share one decoder.
#pragma once
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "profiler/layout.h"
#include "profiler/remote_memory.h"
#include "profiler/unicode.h"

namespace pyprofd {

// A pointer that can be a Python object (user space, 8-aligned).
inline bool plausible(uint64_t p) { return p >= 4096 && p < (uint64_t{1} << 47) && (p & 7) == 0; }

// A str header, decoded from obj[0, n) (n >= layout.str_ascii_size), or nullopt if the
// state cannot describe a str or the length is garbage.
struct StrHeader {
  UnicodeState state;
  int64_t length = 0;       // code points
  uint32_t data_offset = 0;  // compact strings: where the text starts in the object
};
std::optional<StrHeader> decode_str_header(const uint8_t* obj, size_t n, const Layout& l);

// The text of a compact str (at most max_len code points) when it lies within obj[0, n).
// False if it does not (the caller reads it with PyObjects::read_str) or is not a str.
bool decode_str(const uint8_t* obj, size_t n, const Layout& l, size_t max_len, std::string* out);

// A PyLong that fits in int64, when its digits lie within obj[0, n).
std::optional<int64_t> decode_int(const uint8_t* obj, size_t n, const Layout& l);

class PyObjects {
 public:
  PyObjects(RemoteMemory& mem, const Layout& layout) : mem_(mem), layout_(layout) {}

  // Any str kind -> UTF-8; longer strings are truncated to max_len code points.
  std::optional<std::string> read_str(uint64_t str_obj, size_t max_len = 4096);
  // A bytes object's contents, if at most max_len bytes long.
  std::optional<std::vector<uint8_t>> read_bytes(uint64_t bytes_obj, size_t max_len);
  // A PyLong that fits in int64.
  std::optional<int64_t> read_int(uint64_t long_obj);
  // A NUL-terminated C string of at most max bytes (longer: nullopt).
  std::optional<std::string> read_cstr(uint64_t addr, size_t max = 256);
  // Type(obj).tp_name.
  std::optional<std::string> type_name(uint64_t obj);
  // Value stored under a str key, or nullopt (absent, not a dict, unreadable).
  std::optional<uint64_t> dict_get_str(uint64_t dict, std::string_view key);
  // Appends a dict's (key, value) pairs, at most max_items. False if unreadable.
  bool dict_items(uint64_t dict, std::vector<std::pair<uint64_t, uint64_t>>* out,
                  size_t max_items = 4096);
  // Appends a set's (or frozenset's) keys, at most cap; the dummy key of deleted slots
  // is kept (its type tells it apart). False if unreadable.
  bool set_items(uint64_t set, std::vector<uint64_t>* keys, size_t cap);
  // Appends the items of a list or tuple (checked by type), at most cap. False otherwise.
  bool sequence_items(uint64_t list_or_tuple, std::vector<uint64_t>* items, size_t cap);
  // obj.__dict__[name] for an instance (tp_dictoffset dict, 3.11+ managed dict or values).
  std::optional<uint64_t> instance_attr(uint64_t obj, std::string_view name);
  // Changes whenever a module is added to sys.modules (its ma_used and ma_keys), so a
  // caller waiting for an import can skip the scan while nothing was imported.
  std::optional<uint64_t> modules_signature(uint64_t interp_state);
  // sys.modules[name], from PyInterpreterState.
  std::optional<uint64_t> module(uint64_t interp_state, std::string_view name);
  // module.__dict__[name].
  std::optional<uint64_t> module_attr(uint64_t module, std::string_view name);

 private:
  uint64_t modules_interp_ = 0, modules_dict_ = 0;  // for modules_signature
  struct Entry {
    uint64_t key = 0;
    uint64_t value = 0;  // 0 for split tables: the value lives in the values array
  };
  static constexpr size_t kKeysPeek = 512;       // bytes read of a keys object at first
  static constexpr size_t kMaxSetTables = 256;   // sets whose table address is remembered
  bool dict_pointers(uint64_t dict, uint64_t* keys, uint64_t* values);
  // A keys object's live entries (index i = entry number), in one call for a small table.
  bool read_entries(uint64_t keys, std::vector<Entry>* out, size_t max_entries);
  // Index of the entry whose key is the str `key`, or -1.
  int64_t find_key(const std::vector<Entry>& entries, std::string_view key);
  // Lookup in shared keys + a values array (values[i] at values_array + 8*i).
  std::optional<uint64_t> split_get(uint64_t keys, uint64_t values_array, size_t capacity,
                                    std::string_view key);
  // Attribute of an instance whose type has Py_TPFLAGS_MANAGED_DICT (3.11+).
  std::optional<uint64_t> managed_attr(uint64_t obj, uint64_t type, uint64_t flags, int64_t basicsize,
                                       std::string_view name);
  bool is_str(uint64_t obj);
  // A type's tp_flags, cached (types outlive the objects read here).
  std::optional<uint64_t> type_flags(uint64_t type);
  // obj's first bytes, through the 8-byte fields at offsets a and b.
  bool read_head(uint64_t obj, uint32_t a, uint32_t b, uint8_t (&hdr)[64]);
  // A non-NULL pointer stored at addr.
  std::optional<uint64_t> read_ptr(uint64_t addr);

  RemoteMemory& mem_;
  const Layout& layout_;
  std::unordered_map<uint64_t, uint64_t> type_flags_;
  std::unordered_map<uint64_t, std::pair<uint64_t, uint64_t>> set_tables_;  // set -> (table, mask) last read
  std::vector<uint64_t> set_entries_;
};

}  // namespace pyprofd
