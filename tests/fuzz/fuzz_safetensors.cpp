// libFuzzer target: the safetensors reader (vit::parse_safetensors) and the checkpoint layer on top
// (vit::parse_checkpoint). Every rejection must be a vit::Error of kind Data (exit 65, catalogue
// C.43); any other exception escapes and libFuzzer reports it. Accepted checkpoints must
// re-serialize to a file that parses again.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "core/error.hpp"
#include "train/checkpoint.hpp"
#include "train/safetensors.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  try {
    vit::parse_safetensors(bytes, "fuzz.safetensors");
  } catch (const vit::Error& e) {
    if (e.kind() != vit::ErrorKind::Data) std::abort();
  }
  try {
    vit::SafeTensorsReadOptions lax;
    lax.allow_nonfinite = true;
    vit::parse_safetensors(bytes, "fuzz.safetensors", lax);
  } catch (const vit::Error& e) {
    if (e.kind() != vit::ErrorKind::Data) std::abort();
  }
  try {
    const vit::CheckpointState st = vit::parse_checkpoint(bytes, "fuzz.safetensors");
    const std::string again = vit::serialize_checkpoint(st);
    vit::parse_checkpoint(again, "fuzz.safetensors (re-serialized)");
  } catch (const vit::Error& e) {
    if (e.kind() != vit::ErrorKind::Data) std::abort();
  }
  return 0;
}
