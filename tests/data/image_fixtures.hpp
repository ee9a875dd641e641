// Test helpers for the data tests: a self-deleting temp folder and PNG/JPEG writers (Debian's
// stb_image_write, compiled static into each test executable that includes this header).
// Not part of the library.
#pragma once
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STB_IMAGE_WRITE_STATIC
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#endif
#include <stb_image_write.h>
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

namespace vit_test {
namespace fs = std::filesystem;

class TempDir {
 public:
  explicit TempDir(const std::string& tag) {
    path_ = (fs::temp_directory_path() / ("vit_data_" + tag + "_" + std::to_string(::getpid()))).string();
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& rel) const { return path_ + "/" + rel; }

 private:
  std::string path_;
};

inline void write_bytes(const std::string& path, const std::vector<uint8_t>& bytes) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream f(path, std::ios::binary);
  f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

inline void append_cb(void* ctx, void* data, int size) {
  auto* out = static_cast<std::vector<uint8_t>*>(ctx);
  if (size <= 0) return;
  const size_t old = out->size();
  out->resize(old + static_cast<size_t>(size));
  std::memcpy(out->data() + old, data, static_cast<size_t>(size));
}

// pixels: h x w x comp, comp in 1..4.
inline std::vector<uint8_t> encode_png(int w, int h, int comp, const std::vector<uint8_t>& pixels) {
  std::vector<uint8_t> out;
  stbi_write_png_to_func(append_cb, &out, w, h, comp, pixels.data(), w * comp);
  return out;
}
inline std::vector<uint8_t> encode_jpg(int w, int h, int comp, const std::vector<uint8_t>& pixels) {
  std::vector<uint8_t> out;
  stbi_write_jpg_to_func(append_cb, &out, w, h, comp, pixels.data(), 95);
  return out;
}

inline std::vector<uint8_t> constant_pixels(int w, int h, std::vector<uint8_t> value) {
  std::vector<uint8_t> px;
  for (int i = 0; i < w * h; ++i) px.insert(px.end(), value.begin(), value.end());
  return px;
}

}  // namespace vit_test
