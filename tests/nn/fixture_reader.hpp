// Test-local safetensors reader for the committed model fixtures (tests/fixtures/nn, written by
// scripts/make_model_fixtures.py): u64 LE header length, JSON header, raw little-endian F32 data.
// Deliberately minimal (F32 only, whole file in memory) and independent of src/train's reader,
// so the parity tests do not trust the code they are meant to check.
#pragma once
#include <cstdint>
#include <cstring>
#include <fstream>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/tensor.hpp"
#include "nn/model_config.hpp"

namespace vit::test {

struct Fixture {
  std::map<std::string, Tensor> tensors;
  std::map<std::string, std::string> meta;

  const Tensor& at(const std::string& name) const {
    auto it = tensors.find(name);
    if (it == tensors.end()) throw std::runtime_error("fixture has no tensor " + name);
    return it->second;
  }
  const std::string& info(const std::string& key) const {
    auto it = meta.find(key);
    if (it == meta.end()) throw std::runtime_error("fixture has no metadata " + key);
    return it->second;
  }
};

inline Fixture read_fixture(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open " + path);
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (bytes.size() < 8) throw std::runtime_error("short file " + path);
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | static_cast<unsigned char>(bytes[i]);
  if (8 + header_len > bytes.size()) throw std::runtime_error("bad header length in " + path);
  const auto header = nlohmann::json::parse(bytes.begin() + 8, bytes.begin() + 8 + static_cast<long>(header_len));
  const char* base = bytes.data() + 8 + header_len;
  const size_t buffer_size = bytes.size() - 8 - header_len;
  Fixture f;
  for (const auto& [name, entry] : header.items()) {
    if (name == "__metadata__") {
      for (const auto& [k, v] : entry.items()) f.meta[k] = v.get<std::string>();
      continue;
    }
    if (entry.at("dtype") != "F32") throw std::runtime_error("not F32: " + name);
    Shape shape = entry.at("shape").get<Shape>();
    const auto offsets = entry.at("data_offsets").get<std::vector<size_t>>();
    Tensor t = Tensor::zeros(shape);
    if (offsets.size() != 2 || offsets[1] > buffer_size ||
        offsets[1] - offsets[0] != static_cast<size_t>(t.numel()) * 4)
      throw std::runtime_error("bad offsets for " + name);
    std::memcpy(t.data(), base + offsets[0], offsets[1] - offsets[0]);  // LE host assumed (x86)
    f.tensors.emplace(name, t);
  }
  return f;
}

// The ModelConfig described by a fixture's metadata (dropouts 0: the fixtures are deterministic).
inline ModelConfig fixture_config(const Fixture& f) {
  ModelConfig c;
  c.image_size = std::stoll(f.info("image_size"));
  c.channels = std::stoll(f.info("channels"));
  c.patch_size = std::stoll(f.info("patch_size"));
  c.dim = std::stoll(f.info("dim"));
  c.depth = std::stoll(f.info("depth"));
  c.heads = std::stoll(f.info("heads"));
  c.mlp_ratio = std::stod(f.info("mlp_ratio"));
  c.num_classes = std::stoll(f.info("num_classes"));
  c.ln_eps = std::stof(f.info("ln_eps"));
  c.pool = f.info("pool") == "mean" ? Pooling::Mean : Pooling::Cls;
  if (f.info("attention") == "favor") {
    c.attention = AttentionKind::Favor;
    c.favor.features = std::stoll(f.info("features"));
    c.favor.kernel = f.info("kernel") == "relu" ? FavorKernel::Relu : FavorKernel::Softmax;
    c.favor.eps = std::stof(f.info("favor_eps"));
  }
  return c;
}

}  // namespace vit::test
