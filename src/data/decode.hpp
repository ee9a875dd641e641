// Image decoding (stb_image, PNG and JPEG only) and the pixel transforms shared by training and
// evaluation: channel conversion and resizing to the configured size. Nothing here throws: every
// function returns a result with a reason, so it can run inside OpenMP regions.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "data/settings.hpp"

namespace vit {

// uint8 image, HWC (row-major, channels interleaved).
struct Image {
  int64_t height = 0, width = 0, channels = 0;
  std::vector<uint8_t> pixels;  // height * width * channels
};

struct DecodeResult {
  bool ok = false;
  std::string reason;  // why not ok: "file too large (...)", "outofdata", "image too large (...)"
  Image image;
};

// Reads a whole file if it has at most max_bytes bytes. False + reason otherwise.
bool read_file_capped(const std::string& path, int64_t max_bytes, std::vector<uint8_t>& out,
                      std::string& reason) noexcept;

// Decodes PNG/JPEG bytes to settings.channels (1 or 3) at image_size x image_size. The header is
// checked first (stbi_info): w*h above settings.max_pixels is refused before any allocation.
// Always decodes to RGB (req_comp 3: alpha dropped, gray replicated), then converts to gray with
// the ITU-R BT.601 luma weights (299, 587, 114)/1000, the weights PIL's convert('L') uses
// (PIL rounds in 16-bit fixed point, so a value may differ by one).
DecodeResult decode_image(const uint8_t* bytes, size_t size, const DataSettings& settings) noexcept;

// read_file_capped + decode_image; the reason does not repeat the path.
DecodeResult load_image_file(const std::string& path, const DataSettings& settings) noexcept;

// Resamples a (src_h, src_w, C) uint8 block with row stride src_stride (elements) to
// (dst_h, dst_w, C). Bilinear uses half-pixel centres (align_corners=False, no antialiasing);
// Area averages the exact (fractional) source box under each output pixel. Equal sizes copy.
// Rounds to nearest. Used for the cache resize and for random-resized-crop alike.
void resize_u8(uint8_t* dst, int64_t dst_h, int64_t dst_w, const uint8_t* src, int64_t src_h,
               int64_t src_w, int64_t src_stride, int64_t channels, ResizeMode mode);

// RGB (HWC, 3 channels) -> gray with the BT.601 weights above: (299 R + 587 G + 114 B + 500) / 1000.
void rgb_to_gray_u8(uint8_t* dst, const uint8_t* rgb, int64_t pixels);

}  // namespace vit
