// safetensors container I/O (huggingface/safetensors "Format": u64 LE header length N, N bytes of
// JSON header, raw little-endian buffer). The writer stores F32 tensors in name order and pads the
// header with spaces to a multiple of 8; the reader validates every rule of RELIABILITY.md §1.2/§3
// (1-8 and 11) before trusting a byte and throws Error(Data) naming the file and the rule. Our
// checkpoint semantics (format name, config, resume state) live in checkpoint.hpp, not here.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.hpp"

namespace vit {

struct SafeTensors {
  std::vector<std::string> names;  // in data-offset order
  std::map<std::string, Tensor> tensors;
  std::map<std::string, std::string> metadata;  // "__metadata__"
};

struct SafeTensorsReadOptions {
  bool allow_nonfinite = false;  // rule 11: NaN/Inf values are rejected unless this is set
};

constexpr uint64_t kSafeTensorsMaxHeader = 100000000;  // upstream MAX_HEADER_SIZE
constexpr size_t kSafeTensorsMaxRank = 4;

// The whole file as bytes. Tensor names must match [A-Za-z0-9._-]{1,256} and be unique. With
// `checksum`, metadata gets "data_xxh64" (16 hex digits of XXH64 over the data buffer), which the
// reader verifies when present. Deterministic: same input, same bytes.
std::string serialize_safetensors(const std::vector<std::pair<std::string, const Tensor*>>& tensors,
                                  const std::map<std::string, std::string>& metadata,
                                  bool checksum = true);

// Validate and decode. `source` names the file in messages. Every violation -> Error(Data,
// "<source>: invalid safetensors (<Rule>): <detail>"), the rule names following upstream's errors.
SafeTensors parse_safetensors(const std::string& bytes, const std::string& source,
                              const SafeTensorsReadOptions& options = {});
// read_file + parse_safetensors; missing file -> NoInput.
SafeTensors read_safetensors(const std::string& path, const SafeTensorsReadOptions& options = {});

// Whether a tensor name is acceptable ([A-Za-z0-9._-]{1,256}).
bool valid_tensor_name(const std::string& name);

// XXH64 (Collet's xxHash, 64-bit variant) of a byte range.
uint64_t xxh64(const void* data, size_t size, uint64_t seed = 0);
std::string hex64(uint64_t value);

}  // namespace vit
