#include "profiler/code_cache.h"

#include <algorithm>
#include <cstring>
#include <vector>


namespace pyprofd {

namespace {

// CO_GENERATOR | CO_COROUTINE | CO_ASYNC_GENERATOR (the same bits in every version).
constexpr int32_t kGeneratorFlags = 0x20 | 0x80 | 0x200;

constexpr size_t kMaxLineTable = 1 << 20;  // a real line table is far smaller
constexpr size_t kMaxNegative = 1 << 16;

// Pointer and number fields that a different code object at the same address would not share.
void signature_of(const uint8_t* buf, const Layout& l, uint64_t out[4]) {
  out[0] = field<uint64_t>(buf, l.co_name);
  out[1] = field<uint64_t>(buf, l.co_filename);
  out[2] = field<uint64_t>(buf, l.co_linetable);
  out[3] = static_cast<uint64_t>(field<int32_t>(buf, l.co_firstlineno));
}

// Bytes from the object's start that hold ob_type and every signature field.
size_t signature_len(const Layout& l) {
  uint32_t end = std::max({l.ob_type + 8, l.co_name + 8, l.co_filename + 8, l.co_linetable + 8, l.co_firstlineno + 4});
  return std::min<size_t>(end, l.co_size);
}

}  // namespace

int CodeInfo::line(int32_t byte_offset) const {
  if (byte_offset < 0 || !lines) return first_line;
  int ln = lines->line(byte_offset);
  return ln < 0 ? first_line : ln;
}

bool CodeCache::is_code(uint64_t obj) {
  if (code_type_ == 0) return true;
  uint64_t type = 0;
  return mem_.read(obj + layout_.ob_type, &type, sizeof type) && type == code_type_;
}

size_t CodeCache::revalidate(size_t max) {
  negative_.clear();
  if (cache_.empty()) return 0;
  // Entries in address order starting at revalidate_from_, wrapping around.
  std::vector<uint64_t> addrs;
  for (const auto& [addr, info] : cache_) addrs.push_back(addr);
  std::sort(addrs.begin(), addrs.end());
  auto start = std::lower_bound(addrs.begin(), addrs.end(), revalidate_from_);
  std::rotate(addrs.begin(), start, addrs.end());
  if (addrs.size() > max) addrs.resize(max);
  revalidate_from_ = addrs.back() + 1;

  // Only the identifying fields, and neighbouring code objects (one module's, allocated
  // together) in one span: the kernel's cost is per iovec and page, not per byte.
  const Layout& l = layout_;
  const size_t len = signature_len(l);
  std::vector<uint8_t> bufs(addrs.size() * len);
  std::vector<ReadOp> ops;
  for (size_t i = 0; i < addrs.size(); ++i) ops.push_back(ReadOp{addrs[i], &bufs[i * len], len});
  merged_.read(mem_, &ops);
  size_t dropped = 0;
  for (size_t i = 0; i < addrs.size(); ++i) {
    uint64_t sig[4] = {};
    if (ops[i].ok) signature_of(&bufs[i * len], l, sig);
    bool same = ops[i].ok && (code_type_ == 0 || field<uint64_t>(&bufs[i * len], l.ob_type) == code_type_) &&
                std::equal(sig, sig + 4, cache_[addrs[i]]->signature);
    if (!same) {
      cache_.erase(addrs[i]);
      ++dropped;
    }
  }
  return dropped;
}

CodeInfo* CodeCache::get(uint64_t addr) {
  if (addr == 0) return nullptr;
  auto it = cache_.find(addr);
  if (it != cache_.end()) return it->second.get();
  if (negative_.count(addr)) return nullptr;
  auto info = decode(addr);
  if (!info) {
    // A torn read may make a real code object look bad: remember briefly, bounded.
    if (negative_.size() >= kMaxNegative) negative_.clear();
    negative_.emplace(addr, true);
    return nullptr;
  }
  return cache_.emplace(addr, std::move(info)).first->second.get();
}

std::unique_ptr<CodeInfo> CodeCache::decode(uint64_t addr) {
  const Layout& l = layout_;
  std::vector<uint8_t> buf(l.co_size);
  if (l.co_size == 0 || !mem_.read(addr, buf.data(), buf.size())) return nullptr;
  if (code_type_ != 0 && field<uint64_t>(buf.data(), l.ob_type) != code_type_) return nullptr;
  auto info = std::make_unique<CodeInfo>();
  auto name = objs_.read_str(field<uint64_t>(buf.data(), l.co_name));
  auto file = objs_.read_str(field<uint64_t>(buf.data(), l.co_filename));
  if (!name || !file) return nullptr;
  info->name = *name;
  info->file = *file;
  info->qualname = info->name;
  if (l.co_qualname) {
    if (auto q = objs_.read_str(field<uint64_t>(buf.data(), l.co_qualname))) info->qualname = *q;
  }
  info->first_line = field<int32_t>(buf.data(), l.co_firstlineno);
  info->generator = (field<int32_t>(buf.data(), l.co_flags) & kGeneratorFlags) != 0;
  signature_of(buf.data(), l, info->signature);

  auto table = objs_.read_bytes(field<uint64_t>(buf.data(), l.co_linetable), kMaxLineTable);
  if (table && !table->empty()) info->lines = std::make_unique<LineTable>(l.minor, *table, info->first_line);
  return info;
}

}  // namespace pyprofd
