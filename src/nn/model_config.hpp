// Typed model settings (filled from the JSON config's `model` section by train/config_json.cpp;
// image size, channels and class count come from `data` and the data set).
#pragma once
#include <cstdint>

#include "autograd/ops.hpp"

namespace vit {

enum class AttentionKind { Softmax, Favor };
enum class Pooling { Cls, Mean };

struct FavorSettings {
  int64_t features = 0;            // 0: floor(d ln d) with d the head width
  FavorKernel kernel = FavorKernel::Softmax;
  int64_t redraw_interval = 1000;  // training steps between projection redraws; 0: never
  float eps = 1e-6f;
};

struct ModelConfig {
  int64_t image_size = 28;
  int64_t channels = 1;
  int64_t num_classes = 10;
  int64_t patch_size = 4;
  int64_t dim = 64;
  int64_t depth = 6;
  int64_t heads = 4;
  double mlp_ratio = 4.0;  // timm default; hidden = int(dim * mlp_ratio)
  float ln_eps = 1e-6f;
  Pooling pool = Pooling::Cls;
  float dropout = 0.0f;       // after pos-embed, in MLP and projections (timm drop_rate/proj_drop)
  float attn_dropout = 0.0f;  // on attention probabilities
  float drop_path = 0.0f;     // stochastic depth, linear from 0 to this over depth
  AttentionKind attention = AttentionKind::Softmax;
  FavorSettings favor;

  int64_t head_dim() const { return dim / heads; }
  int64_t mlp_hidden() const { return static_cast<int64_t>(static_cast<double>(dim) * mlp_ratio); }
  int64_t num_patches() const { return (image_size / patch_size) * (image_size / patch_size); }
};

}  // namespace vit
