// Typed data settings (filled from the config's `data` section by train/config_json.cpp).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace vit {

enum class ResizeMode { Bilinear, Area };

// Train-time augmentation; every option is off by default.
struct AugmentSettings {
  bool hflip = false;                 // horizontal flip with probability 0.5
  int64_t crop_padding = 0;           // > 0: random crop after zero padding by this many pixels
  bool random_resized_crop = false;   // timm/torchvision RandomResizedCrop
  float rrc_scale_min = 0.08f, rrc_scale_max = 1.0f;
  float rrc_ratio_min = 0.75f, rrc_ratio_max = 4.0f / 3.0f;
};

struct DataSettings {
  std::string train;  // image folder, one sub-folder per class
  std::string val;    // may be empty: no evaluation
  int64_t image_size = 28;
  int64_t channels = 1;  // 1 or 3
  std::vector<float> mean{0.5f};  // one per channel (or one for all)
  std::vector<float> std{0.5f};
  ResizeMode resize = ResizeMode::Bilinear;
  AugmentSettings augment;
  double max_bad_fraction = 0.01;          // undecodable files tolerated before a data error
  int64_t max_file_bytes = 64ll << 20;     // files larger than this are rejected unread
  int64_t max_pixels = 4096ll * 4096ll;    // w*h cap checked before decoding
  int64_t cache_limit_mb = 4096;           // decoded uint8 cache in RAM up to this size
};

}  // namespace vit
