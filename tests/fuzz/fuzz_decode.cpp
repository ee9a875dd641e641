// libFuzzer target: the image decode wrapper vit::decode_image (stb_image PNG/JPEG behind the
// RELIABILITY.md 1.3 caps). Any input must give ok or a reason, never a crash, leak or UB; an ok
// result must have exactly image_size^2 * channels pixels. Not fuzzed here: file reading.
#include <cstdint>
#include <cstdlib>

#include "data/decode.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  vit::DataSettings s;
  s.image_size = 8;
  s.max_pixels = 1 << 20;  // the production cap is 4096^2; smaller keeps executions fast
  for (int channels : {1, 3}) {
    s.channels = channels;
    s.resize = channels == 1 ? vit::ResizeMode::Bilinear : vit::ResizeMode::Area;
    const vit::DecodeResult r = vit::decode_image(data, size, s);
    if (r.ok && (r.image.pixels.size() != static_cast<size_t>(8 * 8 * channels) || !r.reason.empty())) std::abort();
    if (!r.ok && r.reason.empty()) std::abort();
  }
  return 0;
}
