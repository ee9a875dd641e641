// PatchEmbed forward: patchify then the projection.
#include "nn/patch_embed.hpp"

#include "autograd/ops.hpp"

namespace vit {

PatchEmbed::PatchEmbed(int64_t channels, int64_t patch, int64_t dim)
    : channels_(channels),
      patch_(patch),
      proj_(channels * patch * patch, dim, true, Shape{dim, channels, patch, patch}) {
  register_module("proj", proj_);
}

Var PatchEmbed::forward(const Var& images) const {
  VIT_CHECK(images.value().dim() == 4 && images.size(1) == channels_, "PatchEmbed: images ",
            images.shape(), " must be [B, ", channels_, ", H, W]");
  return proj_.forward(patchify(images, patch_));
}

}  // namespace vit
