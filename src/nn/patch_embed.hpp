// Patch embedding, equal to timm's `patch_embed.proj` Conv2d(C, D, kernel=stride=P): images are
// cut into non-overlapping P x P patches flattened in (channel, row, col) order, then one Linear.
// The weight lives in memory as [D, C*P*P]; checkpoints see timm's conv shape [D, C, P, P]
// (same memory order, so only the shape differs). Not here: overlapping or padded patches.
#pragma once
#include "nn/linear.hpp"

namespace vit {

class PatchEmbed : public Module {
 public:
  PatchEmbed(int64_t channels, int64_t patch, int64_t dim);
  // images [B, C, H, W] -> tokens [B, (H/P)*(W/P), D], patches in row-major order
  Var forward(const Var& images) const;
  const Linear& proj() const { return proj_; }

 private:
  int64_t channels_, patch_;
  Linear proj_;
};

}  // namespace vit
