#include "profiler/py_objects.h"

#include <algorithm>
#include <cstring>

#include "profiler/unicode.h"

namespace pyprofd {

namespace {

constexpr size_t kMaxEntries = 1 << 16;        // entries copied per dict (about 1.5 MiB at most)
constexpr int64_t kMaxStrLength = 1 << 30;     // a larger ob length is garbage
constexpr size_t kMaxKeyBytes = 1024;          // longer lookup keys are compared via read_str
constexpr size_t kStrPeek = 64;                // text bytes read with a str header: most names fit
constexpr size_t kMaxTypes = 4096;             // cached type flags before a reset
constexpr uint64_t kMaxSetMask = uint64_t{1} << 19;  // 100k tasks fit in 2^18 slots
constexpr uint64_t kTpManagedDict = 1u << 4;   // Py_TPFLAGS_MANAGED_DICT (3.11+)
constexpr uint64_t kTpInlineValues = 1u << 2;  // Py_TPFLAGS_INLINE_VALUES (3.13+)
constexpr uint64_t kTpListSubclass = 1u << 25;     // Py_TPFLAGS_LIST_SUBCLASS
constexpr uint64_t kTpTupleSubclass = 1u << 26;    // Py_TPFLAGS_TUPLE_SUBCLASS
constexpr uint64_t kTpUnicodeSubclass = 1u << 28;  // Py_TPFLAGS_UNICODE_SUBCLASS: str and subclasses

// Code points in a UTF-8 string (continuation bytes do not start one).
size_t utf8_code_points(std::string_view s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}


}  // namespace

std::optional<StrHeader> decode_str_header(const uint8_t* obj, size_t n, const Layout& l) {
  if (l.str_ascii_size < l.str_state + 4 || n < l.str_ascii_size) return std::nullopt;
  StrHeader h;
  h.length = field<int64_t>(obj, l.str_length);
  h.state = parse_unicode_state(field<uint32_t>(obj, l.str_state), l.str_has_ready_bit);
  if (h.state.kind == 0 || h.length < 0 || h.length > kMaxStrLength) return std::nullopt;
  h.data_offset = h.state.ascii ? l.str_ascii_size : l.str_compact_size;
  return h;
}

bool decode_str(const uint8_t* obj, size_t n, const Layout& l, size_t max_len, std::string* out) {
  auto h = decode_str_header(obj, n, l);
  if (!h || !h->state.compact) return false;
  size_t chars = std::min(static_cast<size_t>(h->length), max_len);
  if (h->data_offset > n || chars * h->state.kind > n - h->data_offset) return false;
  return decode_unicode(h->state.kind, obj + h->data_offset, chars, out);
}

std::optional<int64_t> decode_int(const uint8_t* obj, size_t n, const Layout& l) {
  if (n < l.long_size + 8) return std::nullopt;
  int64_t size = field<int64_t>(obj, l.long_size);
  uint64_t ndigits;
  bool negative;
  if (l.long_tagged) {  // lv_tag: ndigits << 3 | sign (0 positive, 1 zero, 2 negative)
    uint64_t tag = static_cast<uint64_t>(size);
    if ((tag & 3) == 3) return std::nullopt;
    ndigits = tag >> 3;
    negative = (tag & 3) == 2;
  } else {
    negative = size < 0;
    ndigits = negative ? 0 - static_cast<uint64_t>(size) : static_cast<uint64_t>(size);
  }
  if (ndigits > 3) return std::nullopt;  // 3 x 30 bits already exceeds int64
  if (l.long_digits > n || ndigits * 4 > n - l.long_digits) return std::nullopt;
  unsigned __int128 mag = 0;
  for (size_t i = ndigits; i-- > 0;) {
    uint32_t digit = field<uint32_t>(obj, l.long_digits + 4 * i);
    if (digit >> 30) return std::nullopt;
    mag = (mag << 30) | digit;
  }
  unsigned __int128 limit = static_cast<unsigned __int128>(INT64_MAX) + (negative ? 1 : 0);
  if (mag > limit) return std::nullopt;
  if (negative) return static_cast<int64_t>(0 - static_cast<uint64_t>(mag));
  return static_cast<int64_t>(mag);
}

std::optional<uint64_t> PyObjects::read_ptr(uint64_t addr) {
  uint64_t v = 0;
  if (addr == 0 || !mem_.read_value(addr, &v) || v == 0) return std::nullopt;
  return v;
}

// One read usually covers the header and a short text; longer or legacy strings read their text.
std::optional<std::string> PyObjects::read_str(uint64_t obj, size_t max_len) {
  const Layout& l = layout_;
  uint8_t buf[256];
  size_t n = std::min(sizeof buf, size_t{l.str_compact_size} + kStrPeek);
  if (obj == 0 || l.str_ascii_size > n) return std::nullopt;
  if (!mem_.read(obj, buf, n)) {  // a short str near the end of its mapping: the header alone
    n = l.str_ascii_size;
    if (!mem_.read(obj, buf, n)) return std::nullopt;
  }
  std::string out;
  if (decode_str(buf, n, l, max_len, &out)) return out;
  auto h = decode_str_header(buf, n, l);
  if (!h) return std::nullopt;
  uint64_t data = obj + h->data_offset;
  if (!h->state.compact) {  // legacy string: the buffer is separate
    auto p = read_ptr(obj + l.str_data_any);
    if (!p) return std::nullopt;
    data = *p;
  }
  size_t chars = std::min(static_cast<size_t>(h->length), max_len);
  std::vector<uint8_t> text(chars * h->state.kind);
  if (!mem_.read(data, text.data(), text.size())) return std::nullopt;
  if (!decode_unicode(h->state.kind, text.data(), chars, &out)) return std::nullopt;
  return out;
}

std::optional<std::vector<uint8_t>> PyObjects::read_bytes(uint64_t obj, size_t max_len) {
  int64_t len = 0;
  if (obj == 0 || !mem_.read_value(obj + layout_.bytes_size, &len) || len < 0 ||
      static_cast<uint64_t>(len) > max_len) {
    return std::nullopt;
  }
  std::vector<uint8_t> out(static_cast<size_t>(len));
  if (!mem_.read(obj + layout_.bytes_sval, out.data(), out.size())) return std::nullopt;
  return out;
}

std::optional<int64_t> PyObjects::read_int(uint64_t obj) {
  uint8_t buf[64];
  size_t n = layout_.long_digits + 12;  // up to 3 digits
  if (obj == 0 || n > sizeof buf) return std::nullopt;
  // A small int near the end of its mapping: its header and the digits it has.
  if (!mem_.read(obj, buf, n)) {
    int64_t size = 0;
    if (!mem_.read_value(obj + layout_.long_size, &size)) return std::nullopt;
    uint64_t ndigits = layout_.long_tagged ? static_cast<uint64_t>(size) >> 3
                                           : size < 0 ? 0 - static_cast<uint64_t>(size) : size;
    if (ndigits > 3) return std::nullopt;
    n = layout_.long_digits + 4 * ndigits;
    if (!mem_.read(obj, buf, n)) return std::nullopt;
  }
  return decode_int(buf, n, layout_);
}

std::optional<std::string> PyObjects::read_cstr(uint64_t addr, size_t max) {
  // Unknown length: read up to page ends so no chunk crosses into an unmapped page.
  std::string out;
  while (addr && out.size() < max) {
    char chunk[64];
    size_t len = std::min<uint64_t>(sizeof chunk, 4096 - addr % 4096);
    if (!mem_.read(addr, chunk, len)) return std::nullopt;
    const char* nul = static_cast<const char*>(std::memchr(chunk, 0, len));
    out.append(chunk, nul ? nul - chunk : len);
    if (nul) return out;
    addr += len;
  }
  return std::nullopt;
}

std::optional<std::string> PyObjects::type_name(uint64_t obj) {
  auto type = read_ptr(obj + layout_.ob_type);
  if (!type) return std::nullopt;
  auto name = read_ptr(*type + layout_.tp_name);
  if (!name) return std::nullopt;
  return read_cstr(*name, 256);
}

std::optional<uint64_t> PyObjects::type_flags(uint64_t type) {
  auto it = type_flags_.find(type);
  if (it != type_flags_.end()) return it->second;
  uint64_t flags = 0;
  if (!plausible(type) || !mem_.read_value(type + layout_.tp_flags, &flags)) return std::nullopt;
  if (type_flags_.size() >= kMaxTypes) type_flags_.clear();
  type_flags_.emplace(type, flags);
  return flags;
}

bool PyObjects::read_head(uint64_t obj, uint32_t a, uint32_t b, uint8_t (&hdr)[64]) {
  size_t n = std::max(a, b) + 8;
  return plausible(obj) && n <= sizeof hdr && mem_.read(obj, hdr, n);
}

// The table is read together with the head at the address the last read of this set
// found (a set keeps its table until it resizes): one read, not two, when it holds.
bool PyObjects::set_items(uint64_t set, std::vector<uint64_t>* keys, size_t cap) {
  const Layout& l = layout_;
  uint8_t hdr[64];
  const size_t head = std::max(l.set_mask, l.set_table) + 8;
  if (!plausible(set) || head > sizeof hdr) return false;
  auto last = set_tables_.find(set);
  const bool guess = last != set_tables_.end();
  std::vector<uint64_t>& entries = set_entries_;
  entries.resize(guess ? 2 * (last->second.second + 1) : 0);
  ReadOp ops[2] = {{set, hdr, head}, {guess ? last->second.first : 0, entries.data(), entries.size() * 8}};
  mem_.readv(ops, guess ? 2 : 1);
  if (!ops[0].ok) return false;
  uint64_t mask = field<uint64_t>(hdr, l.set_mask);
  uint64_t table = field<uint64_t>(hdr, l.set_table);
  if (mask < 7 || mask >= kMaxSetMask || ((mask + 1) & mask) || !plausible(table)) return false;
  if (!guess || !ops[1].ok || last->second != std::make_pair(table, mask)) {
    entries.resize(2 * (mask + 1));  // setentry {key, hash}
    if (!mem_.read(table, entries.data(), entries.size() * 8)) return false;
  }
  if (set_tables_.size() >= kMaxSetTables) set_tables_.clear();
  set_tables_[set] = {table, mask};
  for (size_t i = 0; i <= mask && keys->size() < cap; ++i) {
    if (plausible(entries[2 * i])) keys->push_back(entries[2 * i]);
  }
  return true;
}

bool PyObjects::sequence_items(uint64_t obj, std::vector<uint64_t>* items, size_t cap) {
  const Layout& l = layout_;
  uint8_t hdr[64];
  if (!read_head(obj, l.var_size, l.list_items, hdr)) return false;
  auto flags = type_flags(field<uint64_t>(hdr, l.ob_type));
  if (!flags || !(*flags & (kTpListSubclass | kTpTupleSubclass))) return false;
  int64_t size = field<int64_t>(hdr, l.var_size);
  if (size < 0) return false;
  size_t count = std::min<size_t>(static_cast<size_t>(size), cap);
  uint64_t base = (*flags & kTpListSubclass) ? field<uint64_t>(hdr, l.list_items) : obj + l.tuple_items;
  if (count == 0) return true;
  size_t old = items->size();
  items->resize(old + count);
  if (!plausible(base) || !mem_.read(base, items->data() + old, count * 8)) {
    items->resize(old);
    return false;
  }
  return true;
}

bool PyObjects::read_entries(uint64_t keys, std::vector<Entry>* out, size_t max_entries) {
  const Layout& l = layout_;
  // A small table's indices and entries follow the header: one read up to kKeysPeek
  // bytes (never past the header's page, which is mapped if the header is).
  uint8_t buf[kKeysPeek];
  const uint8_t* hdr = buf;
  const size_t to_page_end = 4096 - (keys & 4095);
  size_t peek = std::max<size_t>(l.dk_indices, std::min(kKeysPeek, to_page_end));
  if (keys == 0 || l.dk_indices > 64) return false;
  if (!mem_.read(keys, buf, peek)) {  // a recording holds only the header: read it alone
    peek = l.dk_indices;
    if (!mem_.read(keys, buf, peek)) return false;
  }
  uint64_t size;
  int64_t nentries = field<int64_t>(hdr, l.dk_nentries);
  size_t entry_size = 24, key_off = 8, value_off = 16;  // PyDictKeyEntry {hash, key, value}
  if (l.dk_kind != 0) {  // 3.11+: log2 size and an entry kind
    uint8_t log2 = hdr[l.dk_size];
    uint8_t kind = hdr[l.dk_kind];
    if (log2 < 3 || log2 > 30 || kind > 2) return false;
    size = uint64_t{1} << log2;
    if (kind != 0) entry_size = 16, key_off = 0, value_off = 8;  // PyDictUnicodeEntry {key, value}
  } else {
    size = field<uint64_t>(hdr, l.dk_size);
    if (size < 8 || size > (uint64_t{1} << 30) || (size & (size - 1))) return false;
  }
  // USABLE_FRACTION(size) = 2/3 of the table bounds the entry count.
  if (nentries < 0 || static_cast<uint64_t>(nentries) > size * 2 / 3) return false;
  uint64_t index_width = size <= 0xff ? 1 : size <= 0xffff ? 2 : 4;  // 8 needs size > 2^32
  uint64_t entries = keys + l.dk_indices + size * index_width;
  size_t n = std::min<size_t>({static_cast<size_t>(nentries), max_entries, kMaxEntries});
  const uint64_t at = entries - keys;  // the entries' offset in buf, if they are in it
  const uint8_t* e = nullptr;
  std::vector<uint8_t> raw;
  if (at + n * entry_size <= peek) {
    e = buf + at;
  } else {
    raw.resize(n * entry_size);
    if (!mem_.read(entries, raw.data(), raw.size())) return false;
    e = raw.data();
  }
  out->resize(n);
  for (size_t i = 0; i < n; ++i) {
    (*out)[i].key = field<uint64_t>(e + i * entry_size, key_off);
    (*out)[i].value = field<uint64_t>(e + i * entry_size, value_off);
  }
  return true;
}

int64_t PyObjects::find_key(const std::vector<Entry>& entries, std::string_view key) {
  const Layout& l = layout_;
  const size_t cps = utf8_code_points(key);
  const bool key_ascii = cps == key.size();
  // One batched read of every key's header plus, for ASCII strings, the characters.
  const size_t stride = l.str_ascii_size + (key.size() <= kMaxKeyBytes ? key.size() : 0);
  std::vector<uint8_t> buf(entries.size() * stride);
  std::vector<ReadOp> ops;
  std::vector<size_t> op_entry;
  for (size_t i = 0; i < entries.size(); ++i) {
    if (entries[i].key == 0) continue;  // deleted slot
    ops.push_back({entries[i].key, &buf[i * stride], stride, false});
    op_entry.push_back(i);
  }
  mem_.readv(ops.data(), ops.size());
  for (size_t j = 0; j < ops.size(); ++j) {
    size_t i = op_entry[j];
    const uint8_t* s = &buf[i * stride];
    // A key object shorter than the read (end of a mapping): fall back to its header alone.
    if (!ops[j].ok && !mem_.read(entries[i].key, buf.data() + i * stride, l.str_ascii_size)) continue;
    auto h = decode_str_header(s, l.str_ascii_size, l);
    if (!h || static_cast<uint64_t>(h->length) != cps) continue;
    const UnicodeState& st = h->state;
    if (st.compact && st.ascii && ops[j].ok && stride > l.str_ascii_size) {
      if (key_ascii && std::memcmp(s + l.str_ascii_size, key.data(), key.size()) == 0 &&
          is_str(entries[i].key)) {
        return i;
      }
      continue;
    }
    if (st.ascii && !key_ascii) continue;
    auto text = read_str(entries[i].key, cps);
    if (text && *text == key && is_str(entries[i].key)) return i;
  }
  return -1;
}

// Only checked on a match: an int or other key can look like a str header by chance.
bool PyObjects::is_str(uint64_t obj) {
  auto type = read_ptr(obj + layout_.ob_type);
  auto flags = type ? type_flags(*type) : std::nullopt;
  return flags && (*flags & kTpUnicodeSubclass);
}

std::optional<uint64_t> PyObjects::split_get(uint64_t keys, uint64_t values, size_t capacity,
                                             std::string_view key) {
  std::vector<Entry> entries;
  if (!read_entries(keys, &entries, kMaxEntries)) return std::nullopt;
  int64_t i = find_key(entries, key);
  if (i < 0 || static_cast<size_t>(i) >= capacity) return std::nullopt;
  return read_ptr(values + 8 * i);
}

std::optional<uint64_t> PyObjects::dict_get_str(uint64_t dict, std::string_view key) {
  const Layout& l = layout_;
  uint64_t keys = 0, values = 0;
  if (!dict_pointers(dict, &keys, &values)) return std::nullopt;
  std::vector<Entry> entries;
  if (!read_entries(keys, &entries, kMaxEntries)) return std::nullopt;
  int64_t i = find_key(entries, key);
  if (i < 0) return std::nullopt;
  if (values == 0) {  // combined table: the value sits in the entry
    if (entries[i].value == 0) return std::nullopt;
    return entries[i].value;
  }
  if (l.values_header != 0) {  // 3.13: values[] is bounded by the capacity byte
    uint8_t capacity = 0;
    if (!mem_.read_value(values, &capacity) || i >= capacity) return std::nullopt;
  }
  return read_ptr(values + l.values_header + 8 * i);
}

// ma_keys and ma_values, in one read where they are neighbours (every version so far).
bool PyObjects::dict_pointers(uint64_t dict, uint64_t* keys, uint64_t* values) {
  const Layout& l = layout_;
  if (dict == 0) return false;
  if (l.dict_values == l.dict_keys + 8) {
    uint64_t both[2];
    if (!mem_.read(dict + l.dict_keys, both, sizeof both)) return false;
    *keys = both[0];
    *values = both[1];
    return true;
  }
  return mem_.read_value(dict + l.dict_keys, keys) && mem_.read_value(dict + l.dict_values, values);
}

bool PyObjects::dict_items(uint64_t dict, std::vector<std::pair<uint64_t, uint64_t>>* out,
                           size_t max_items) {
  const Layout& l = layout_;
  uint64_t keys = 0, values = 0;
  if (!dict_pointers(dict, &keys, &values)) return false;
  std::vector<Entry> entries;
  if (!read_entries(keys, &entries, kMaxEntries)) return false;
  if (values != 0) {  // split table: one read of the values array
    size_t n = entries.size();
    if (l.values_header != 0) {
      uint8_t capacity = 0;
      if (!mem_.read_value(values, &capacity)) return false;
      n = std::min<size_t>(n, capacity);
    }
    std::vector<uint64_t> vals(n);
    if (!mem_.read(values + l.values_header, vals.data(), n * 8)) return false;
    entries.resize(n);
    for (size_t i = 0; i < n; ++i) entries[i].value = vals[i];
  }
  for (const Entry& e : entries) {
    if (out->size() >= max_items) break;
    if (e.key != 0 && e.value != 0) out->emplace_back(e.key, e.value);
  }
  return true;
}

std::optional<uint64_t> PyObjects::instance_attr(uint64_t obj, std::string_view name) {
  const Layout& l = layout_;
  auto type = read_ptr(obj + l.ob_type);
  if (!type) return std::nullopt;
  uint64_t flags = 0;
  int64_t basicsize = 0, dictoffset = 0;
  if (!mem_.read_value(*type + l.tp_flags, &flags) || !mem_.read_value(*type + l.tp_basicsize, &basicsize) ||
      !mem_.read_value(*type + l.tp_dictoffset, &dictoffset)) {
    return std::nullopt;
  }
  if (l.managed_dict_kind != Layout::ManagedDict::kNone && (flags & kTpManagedDict)) {
    return managed_attr(obj, *type, flags, basicsize, name);
  }
  // Classic __dict__ slot; negative offsets (variable-size objects) are not supported.
  if (dictoffset <= 0 || dictoffset + 8 > basicsize) return std::nullopt;
  auto dict = read_ptr(obj + dictoffset);
  if (!dict) return std::nullopt;
  return dict_get_str(*dict, name);
}

std::optional<uint64_t> PyObjects::managed_attr(uint64_t obj, uint64_t type, uint64_t flags, int64_t basicsize,
                                                std::string_view name) {
  const Layout& l = layout_;
  auto cached_keys = [&]() { return read_ptr(type + l.ht_cached_keys); };
  switch (l.managed_dict_kind) {
    case Layout::ManagedDict::kValuesOrDict:  // values pointer, or (once materialised) dict pointer
      if (auto values = read_ptr(obj + l.managed_values)) {
        auto keys = cached_keys();
        if (!keys) return std::nullopt;
        return split_get(*keys, *values, kMaxEntries, name);
      }
      break;
    case Layout::ManagedDict::kDictOrValues: {  // values - 1 (odd) or a dict
      auto dorv = read_ptr(obj + l.managed_dict);
      if (!dorv) return std::nullopt;
      if (*dorv & 1) {
        auto keys = cached_keys();
        if (!keys) return std::nullopt;
        return split_get(*keys, *dorv + 1, kMaxEntries, name);  // stored as values - 1
      }
      return dict_get_str(*dorv, name);
    }
    case Layout::ManagedDict::kInlineValues: {  // values follow the object unless invalidated
      if (!(flags & kTpInlineValues)) break;
      if (basicsize <= 0 || basicsize > (1 << 20)) return std::nullopt;
      uint64_t values = obj + basicsize;
      uint8_t hdr[4];  // capacity, size, embedded, valid
      if (!mem_.read(values, hdr, sizeof hdr)) return std::nullopt;
      if (hdr[3]) {
        auto keys = cached_keys();
        if (!keys) return std::nullopt;
        return split_get(*keys, values + l.values_header, hdr[0], name);
      }
      break;
    }
    case Layout::ManagedDict::kNone:
      return std::nullopt;
  }
  auto dict = read_ptr(obj + l.managed_dict);
  if (!dict) return std::nullopt;
  return dict_get_str(*dict, name);
}

std::optional<uint64_t> PyObjects::modules_signature(uint64_t interp_state) {
  if (layout_.is_modules == 0) return std::nullopt;
  // The sys.modules dict lives as long as the interpreter: its address is read once.
  if (modules_interp_ != interp_state || !modules_dict_) {
    auto modules = read_ptr(interp_state + layout_.is_modules);
    if (!modules) return std::nullopt;
    modules_interp_ = interp_state;
    modules_dict_ = *modules;
  }
  uint8_t head[64];  // the dict's header: ma_used and ma_keys in one read
  size_t n = std::max(layout_.dict_used, layout_.dict_keys) + 8;
  if (n > sizeof head || !mem_.read(modules_dict_, head, n)) {
    modules_dict_ = 0;
    return std::nullopt;
  }
  uint64_t used, keys;
  std::memcpy(&used, head + layout_.dict_used, 8);
  std::memcpy(&keys, head + layout_.dict_keys, 8);
  return used * 0x9E3779B97F4A7C15ULL ^ keys;
}

std::optional<uint64_t> PyObjects::module(uint64_t interp_state, std::string_view name) {
  if (layout_.is_modules == 0) return std::nullopt;
  auto modules = read_ptr(interp_state + layout_.is_modules);
  if (!modules) return std::nullopt;
  return dict_get_str(*modules, name);
}

std::optional<uint64_t> PyObjects::module_attr(uint64_t module, std::string_view name) {
  auto dict = read_ptr(module + layout_.mod_dict);
  if (!dict) return std::nullopt;
  return dict_get_str(*dict, name);
}

}  // namespace pyprofd
