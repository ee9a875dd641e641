// Typed settings of the training loop (config section `train`).
#pragma once
#include <cstdint>

namespace vit {

enum class NonFinitePolicy { Abort, Skip };

struct TrainSettings {
  int64_t epochs = 10;
  int64_t steps = 0;                 // > 0: step budget instead of epochs
  int64_t batch_size = 128;
  int64_t accum_steps = 1;           // micro-batches per optimizer step
  float label_smoothing = 0.1f;      // timm default
  uint64_t seed = 0;
  int threads = 0;                   // 0: OpenMP default (all cores)
  int64_t eval_every_steps = 0;      // 0: once per epoch
  int64_t checkpoint_every_steps = 0;  // 0: once per epoch
  int64_t keep_checkpoints = 3;      // step checkpoints retained (plus best.safetensors)
  int64_t log_every_steps = 50;
  NonFinitePolicy nonfinite = NonFinitePolicy::Abort;
  int64_t max_skipped_steps = 10;    // with Skip: abort (exit 3) after this many
  double max_wall_time_s = 0.0;      // 0: no limit; else save and exit 75
};

}  // namespace vit
