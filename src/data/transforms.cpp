// Augmentation kernels on uint8 HWC images. Draw order per sample (fixed, so a sample's result
// depends only on its Rng stream): RRC draws (2 per try, then 2 for the position), then 2 for the
// padded crop offset, then 1 for the flip. Each block draws only when its option is on.
#include "data/transforms.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "data/decode.hpp"

namespace vit {

namespace {
double uniform_in(Rng& rng, double lo, double hi) { return lo + (hi - lo) * rng.uniform_double(); }
int64_t py_round(double x) { return static_cast<int64_t>(std::nearbyint(x)); }  // half to even
}  // namespace

bool augment_enabled(const AugmentSettings& a) {
  return a.hflip || a.crop_padding > 0 || a.random_resized_crop;
}

CropBox random_resized_crop_box(int64_t height, int64_t width, const AugmentSettings& a, Rng& rng) {
  const double area = static_cast<double>(height) * static_cast<double>(width);
  const double log_lo = std::log(static_cast<double>(a.rrc_ratio_min));
  const double log_hi = std::log(static_cast<double>(a.rrc_ratio_max));
  for (int attempt = 0; attempt < 10; ++attempt) {
    const double target = area * uniform_in(rng, a.rrc_scale_min, a.rrc_scale_max);
    const double ratio = std::exp(uniform_in(rng, log_lo, log_hi));
    const int64_t w = py_round(std::sqrt(target * ratio));
    const int64_t h = py_round(std::sqrt(target / ratio));
    if (w > 0 && w <= width && h > 0 && h <= height) {
      CropBox box;
      box.top = static_cast<int64_t>(rng.below(static_cast<uint64_t>(height - h + 1)));
      box.left = static_cast<int64_t>(rng.below(static_cast<uint64_t>(width - w + 1)));
      box.height = h;
      box.width = w;
      return box;
    }
  }
  // Fallback: centre crop with the aspect ratio clamped into the allowed range.
  const double in_ratio = static_cast<double>(width) / static_cast<double>(height);
  int64_t w = width, h = height;
  if (in_ratio < a.rrc_ratio_min) {
    h = py_round(static_cast<double>(w) / a.rrc_ratio_min);
  } else if (in_ratio > a.rrc_ratio_max) {
    w = py_round(static_cast<double>(h) * a.rrc_ratio_max);
  }
  return CropBox{(height - h) / 2, (width - w) / 2, h, w};
}

void augment_image(uint8_t* img, int64_t H, int64_t W, int64_t C, const AugmentSettings& a,
                   ResizeMode mode, Rng& rng, std::vector<uint8_t>& scratch) {
  const size_t bytes = static_cast<size_t>(H * W * C);
  if (a.random_resized_crop) {
    const CropBox box = random_resized_crop_box(H, W, a, rng);
    scratch.resize(bytes);
    resize_u8(scratch.data(), H, W, img + (box.top * W + box.left) * C, box.height, box.width, W * C, C, mode);
    std::memcpy(img, scratch.data(), bytes);
  }
  if (a.crop_padding > 0) {
    // Pad by p with zeros, take an HxW window at (i, j) in [0, 2p]^2: out(y,x) = in(y+i-p, x+j-p).
    const int64_t p = a.crop_padding;
    const int64_t i = static_cast<int64_t>(rng.below(static_cast<uint64_t>(2 * p + 1))) - p;
    const int64_t j = static_cast<int64_t>(rng.below(static_cast<uint64_t>(2 * p + 1))) - p;
    scratch.assign(bytes, 0);
    for (int64_t y = 0; y < H; ++y) {
      const int64_t sy = y + i;
      if (sy < 0 || sy >= H) continue;
      const int64_t x0 = std::max<int64_t>(0, -j), x1 = std::min<int64_t>(W, W - j);
      if (x1 > x0)
        std::memcpy(scratch.data() + (y * W + x0) * C, img + (sy * W + x0 + j) * C,
                    static_cast<size_t>((x1 - x0) * C));
    }
    std::memcpy(img, scratch.data(), bytes);
  }
  if (a.hflip && rng.uniform() < 0.5f) {
    for (int64_t y = 0; y < H; ++y) {
      uint8_t* row = img + y * W * C;
      for (int64_t x = 0; x < W / 2; ++x)
        for (int64_t c = 0; c < C; ++c) std::swap(row[x * C + c], row[(W - 1 - x) * C + c]);
    }
  }
}

}  // namespace vit
