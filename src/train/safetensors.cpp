// safetensors reader/writer (see safetensors.hpp) and XXH64. The reader checks, in order: header
// length (rule 1), UTF-8 and the leading '{' (2), strict JSON with no duplicate keys and a
// string->string __metadata__ (3), entry shape (4), byte counts with checked arithmetic (5),
// contiguous offsets covering the buffer exactly (6), the dtype allow-list, the checksum (8) and
// finite values (11). Data is copied with memcpy (7), so alignment never matters.
#include "train/safetensors.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/error.hpp"
#include "train/fsutil.hpp"
#include "train/json_strict.hpp"

namespace vit {
namespace {

using json = nlohmann::json;
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "safetensors data is little-endian");

[[noreturn]] void reject(const std::string& source, const char* rule, const std::string& detail) {
  fail(ErrorKind::Data, source, ": invalid safetensors (", rule, "): ", detail);
}

// Bytes per element of every safetensors dtype (so layout checks work for any file).
int64_t dtype_bytes(const std::string& dtype) {
  static const std::map<std::string, int64_t> sizes = {
      {"BOOL", 1}, {"U8", 1},  {"I8", 1},  {"F8_E5M2", 1}, {"F8_E4M3", 1}, {"I16", 2},
      {"U16", 2},  {"F16", 2}, {"BF16", 2}, {"I32", 4},    {"U32", 4},     {"F32", 4},
      {"F64", 8},  {"I64", 8}, {"U64", 8}};
  const auto it = sizes.find(dtype);
  return it == sizes.end() ? 0 : it->second;
}

// Offset of the first invalid UTF-8 sequence or NUL byte, or npos.
size_t invalid_utf8_at(const std::string& s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const size_t n = s.size();
  for (size_t i = 0; i < n;) {
    const unsigned c = p[i];
    if (c == 0) return i;
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len = 0;
    uint32_t cp = 0, min = 0;
    if ((c & 0xE0) == 0xC0) len = 2, cp = c & 0x1F, min = 0x80;
    else if ((c & 0xF0) == 0xE0) len = 3, cp = c & 0x0F, min = 0x800;
    else if ((c & 0xF8) == 0xF0) len = 4, cp = c & 0x07, min = 0x10000;
    else return i;
    if (i + len > n) return i;
    for (size_t k = 1; k < len; ++k) {
      if ((p[i + k] & 0xC0) != 0x80) return i;
      cp = (cp << 6) | (p[i + k] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return i;
    i += len;
  }
  return std::string::npos;
}

bool mul_overflows(uint64_t a, uint64_t b, uint64_t& out) { return __builtin_mul_overflow(a, b, &out); }

struct Entry {
  std::string name, dtype;
  Shape shape;
  uint64_t begin = 0, end = 0;
};

uint64_t read_u64_le(const char* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}

}  // namespace

bool valid_tensor_name(const std::string& name) {
  if (name.empty() || name.size() > 256) return false;
  return std::all_of(name.begin(), name.end(), [](char ch) {
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           ch == '.' || ch == '_' || ch == '-';
  });
}

std::string serialize_safetensors(const std::vector<std::pair<std::string, const Tensor*>>& tensors,
                                  const std::map<std::string, std::string>& metadata, bool checksum) {
  std::map<std::string, const Tensor*> sorted;
  for (const auto& [name, t] : tensors) {
    VIT_CHECK(valid_tensor_name(name), "safetensors: invalid tensor name '", name, "'");
    VIT_CHECK(t != nullptr && t->defined(), "safetensors: tensor '", name, "' is undefined");
    VIT_CHECK(t->dim() <= static_cast<int64_t>(kSafeTensorsMaxRank), "safetensors: tensor '", name,
              "' has rank ", t->dim());
    VIT_CHECK(sorted.emplace(name, t).second, "safetensors: duplicate tensor name '", name, "'");
  }
  std::string data;
  json header = json::object();
  for (const auto& [name, t] : sorted) {
    const uint64_t begin = data.size();
    data.append(reinterpret_cast<const char*>(t->data()), static_cast<size_t>(t->numel()) * 4);
    header[name] = {{"dtype", "F32"}, {"shape", t->shape()}, {"data_offsets", {begin, data.size()}}};
  }
  std::map<std::string, std::string> meta = metadata;
  if (checksum) meta["data_xxh64"] = hex64(xxh64(data.data(), data.size()));
  if (!meta.empty()) header["__metadata__"] = meta;
  std::string text = header.dump();  // throws type_error.316 on non-UTF-8 metadata: a caller bug
  text.append((8 - text.size() % 8) % 8, ' ');
  std::string out(8, '\0');
  const uint64_t n = text.size();
  std::memcpy(out.data(), &n, 8);
  out += text;
  out += data;
  return out;
}

SafeTensors parse_safetensors(const std::string& bytes, const std::string& source,
                              const SafeTensorsReadOptions& options) {
  // Rule 1: header length.
  if (bytes.size() < 8)
    reject(source, "HeaderTooSmall", "file has " + std::to_string(bytes.size()) + " bytes, fewer than 8");
  const uint64_t n = read_u64_le(bytes.data());
  if (n > kSafeTensorsMaxHeader)
    reject(source, "HeaderTooLarge", "header length " + std::to_string(n) + " exceeds 100000000");
  if (8 + n > bytes.size())
    reject(source, "InvalidHeaderLength", "header length " + std::to_string(n) + " exceeds the file (" +
                                              std::to_string(bytes.size()) + " bytes)");
  const std::string header = bytes.substr(8, n);
  // Rule 2: UTF-8, no NUL, starts with '{'.
  const size_t bad = invalid_utf8_at(header);
  if (bad != std::string::npos)
    reject(source, "InvalidHeader", "header is not valid UTF-8 (or holds NUL) at byte " + std::to_string(bad));
  const size_t first = header.find_first_not_of(" \t\r\n");
  if (first == std::string::npos || header[first] != '{')
    reject(source, "InvalidHeaderStart", "header does not start with '{'");
  // Rule 3: strict JSON.
  StrictJson parsed = parse_json_strict(header);
  if (!parsed.ok) reject(source, "InvalidHeaderDeserialization", parsed.error);
  if (!parsed.value.is_object()) reject(source, "InvalidHeaderDeserialization", "header is not an object");

  SafeTensors out;
  std::vector<Entry> entries;
  for (const auto& item : parsed.value.items()) {
    const std::string& name = item.key();
    const json& v = item.value();
    if (name == "__metadata__") {
      if (!v.is_object()) reject(source, "InvalidMetadata", "__metadata__ is not an object");
      for (const auto& m : v.items()) {
        if (!m.value().is_string())
          reject(source, "InvalidMetadata", "__metadata__." + m.key() + " is not a string");
        out.metadata[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    // Rule 4: entry shape.
    if (!valid_tensor_name(name))
      reject(source, "InvalidTensorName", "tensor name '" + name.substr(0, 64) + "' is not [A-Za-z0-9._-]{1,256}");
    if (!v.is_object() || v.size() != 3 || !v.contains("dtype") || !v.contains("shape") ||
        !v.contains("data_offsets"))
      reject(source, "InvalidTensorEntry", "tensor " + name + ": expected exactly dtype, shape, data_offsets");
    Entry e;
    e.name = name;
    if (!v["dtype"].is_string() || dtype_bytes(v["dtype"].get<std::string>()) == 0)
      reject(source, "UnknownDtype", "tensor " + name + ": unknown dtype " + v["dtype"].dump());
    e.dtype = v["dtype"].get<std::string>();
    const json& shape = v["shape"];
    if (!shape.is_array() || shape.size() > kSafeTensorsMaxRank)
      reject(source, "InvalidTensorEntry", "tensor " + name + ": shape must be an array of rank <= 4");
    for (const json& dim : shape) {
      if (!dim.is_number_unsigned() || dim.get<uint64_t>() >= (1ull << 31))
        reject(source, "InvalidTensorEntry", "tensor " + name + ": shape entries must be integers in [0, 2^31)");
      e.shape.push_back(static_cast<int64_t>(dim.get<uint64_t>()));
    }
    const json& offs = v["data_offsets"];
    if (!offs.is_array() || offs.size() != 2 || !offs[0].is_number_unsigned() || !offs[1].is_number_unsigned())
      reject(source, "InvalidTensorEntry", "tensor " + name + ": data_offsets must be two non-negative integers");
    e.begin = offs[0].get<uint64_t>();
    e.end = offs[1].get<uint64_t>();
    if (e.end < e.begin) reject(source, "InvalidOffset", "tensor " + name + ": data_offsets end < begin");
    // Rule 5: byte count with checked arithmetic.
    uint64_t count = 1;
    for (int64_t dim : e.shape)
      if (mul_overflows(count, static_cast<uint64_t>(dim), count))
        reject(source, "ValidationOverflow", "tensor " + name + ": shape product overflows");
    uint64_t nbytes = 0;
    if (mul_overflows(count, static_cast<uint64_t>(dtype_bytes(e.dtype)), nbytes))
      reject(source, "ValidationOverflow", "tensor " + name + ": byte count overflows");
    if (e.end - e.begin != nbytes)
      reject(source, "TensorInvalidInfo", "tensor " + name + ": data_offsets span " + std::to_string(e.end - e.begin) +
                                              " bytes but the shape needs " + std::to_string(nbytes));
    entries.push_back(std::move(e));
  }
  // Rule 6: the ranges tile [0, buffer) exactly.
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  const uint64_t buffer = bytes.size() - 8 - n;
  uint64_t expected = 0;
  for (const Entry& e : entries) {
    if (e.begin != expected)
      reject(source, "InvalidOffset", "tensor " + e.name + ": begins at " + std::to_string(e.begin) +
                                          (e.begin < expected ? ", overlapping the previous tensor"
                                                              : ", leaving a gap") +
                                          " (expected " + std::to_string(expected) + ")");
    if (e.end > buffer)
      reject(source, "InvalidOffset", "tensor " + e.name + ": data_offsets end " + std::to_string(e.end) +
                                          " is beyond the data buffer (" + std::to_string(buffer) + " bytes)");
    expected = e.end;
  }
  if (expected != buffer)
    reject(source, "MetadataIncompleteBuffer", std::to_string(buffer - expected) +
                                                   " trailing bytes after the last tensor");
  // Our allow-list, after the layout is known to be sound.
  for (const Entry& e : entries)
    if (e.dtype != "F32")
      reject(source, "UnsupportedDtype", "tensor " + e.name + " has dtype " + e.dtype + "; only F32 is supported");
  // Rule 8: checksum, when the writer recorded one.
  const char* data = bytes.data() + 8 + n;
  const auto sum = out.metadata.find("data_xxh64");
  if (sum != out.metadata.end() && sum->second != hex64(xxh64(data, buffer)))
    reject(source, "ChecksumMismatch", "data checksum mismatch (data_xxh64 " + sum->second.substr(0, 16) +
                                           ", computed " + hex64(xxh64(data, buffer)) + ")");
  // Rules 7 and 11: copy, then check values.
  for (const Entry& e : entries) {
    Tensor t = Tensor::empty(e.shape);
    if (t.numel() > 0) std::memcpy(t.data(), data + e.begin, e.end - e.begin);
    if (!options.allow_nonfinite)
      for (int64_t i = 0; i < t.numel(); ++i)
        if (!std::isfinite(t[i]))
          reject(source, "NonFinite", "tensor " + e.name + " holds a non-finite value at index " + std::to_string(i));
    out.names.push_back(e.name);
    out.tensors.emplace(e.name, std::move(t));
  }
  return out;
}

SafeTensors read_safetensors(const std::string& path, const SafeTensorsReadOptions& options) {
  return parse_safetensors(read_file(path, "safetensors file"), path, options);
}

// ---- XXH64 (from the published algorithm description) ----
namespace {
constexpr uint64_t P1 = 0x9E3779B185EBCA87ull, P2 = 0xC2B2AE3D27D4EB4Full, P3 = 0x165667B19E3779F9ull,
                   P4 = 0x85EBCA77C2B2AE63ull, P5 = 0x27D4EB2F165667C5ull;
uint64_t rotl(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }
uint64_t round64(uint64_t acc, uint64_t input) { return rotl(acc + input * P2, 31) * P1; }
uint64_t merge64(uint64_t acc, uint64_t v) { return (acc ^ round64(0, v)) * P1 + P4; }
uint32_t read_u32_le(const unsigned char* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
}  // namespace

uint64_t xxh64(const void* data, size_t size, uint64_t seed) {
  const auto* p = static_cast<const unsigned char*>(data);
  const unsigned char* const end = p + size;
  uint64_t h;
  if (size >= 32) {
    uint64_t v1 = seed + P1 + P2, v2 = seed + P2, v3 = seed, v4 = seed - P1;
    for (; p + 32 <= end; p += 32) {
      v1 = round64(v1, read_u64_le(reinterpret_cast<const char*>(p)));
      v2 = round64(v2, read_u64_le(reinterpret_cast<const char*>(p + 8)));
      v3 = round64(v3, read_u64_le(reinterpret_cast<const char*>(p + 16)));
      v4 = round64(v4, read_u64_le(reinterpret_cast<const char*>(p + 24)));
    }
    h = rotl(v1, 1) + rotl(v2, 7) + rotl(v3, 12) + rotl(v4, 18);
    h = merge64(merge64(merge64(merge64(h, v1), v2), v3), v4);
  } else {
    h = seed + P5;
  }
  h += static_cast<uint64_t>(size);
  for (; p + 8 <= end; p += 8) h = rotl(h ^ round64(0, read_u64_le(reinterpret_cast<const char*>(p))), 27) * P1 + P4;
  if (p + 4 <= end) {
    h = rotl(h ^ (static_cast<uint64_t>(read_u32_le(p)) * P1), 23) * P2 + P3;
    p += 4;
  }
  for (; p < end; ++p) h = rotl(h ^ (*p * P5), 11) * P1;
  h ^= h >> 33;
  h *= P2;
  h ^= h >> 29;
  h *= P3;
  h ^= h >> 32;
  return h;
}

std::string hex64(uint64_t value) {
  static const char* digits = "0123456789abcdef";
  std::string s(16, '0');
  for (int i = 15; i >= 0; --i, value >>= 4) s[static_cast<size_t>(i)] = digits[value & 15];
  return s;
}

}  // namespace vit
