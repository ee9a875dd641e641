// libFuzzer target: the strict config parser and --set overrides. Input = config JSON, then a NUL
// byte, then one `key.path=value` override per line. Every rejection must be a vit::Error of kind
// Config (exit 78) or Usage (a bad optimizer name); an accepted config must round-trip through
// to_json unchanged. Not here: file reading and relative-path resolution against a folder.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "core/error.hpp"
#include "train/config.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string input(reinterpret_cast<const char*>(data), size);
  const size_t nul = input.find('\0');
  const std::string text = input.substr(0, nul);
  try {
    vit::Config c = vit::parse_config_string(text, "fuzz.json");
    if (nul != std::string::npos) {
      size_t pos = nul + 1;
      while (pos <= input.size()) {
        size_t end = input.find('\n', pos);
        if (end == std::string::npos) end = input.size();
        if (end > pos) vit::apply_override(c, input.substr(pos, end - pos));
        pos = end + 1;
      }
    }
    vit::validate(c);
    const std::string json = vit::to_json(c);
    const vit::Config back = vit::parse_config_string(json, "fuzz.json (round trip)");
    if (vit::to_json(back) != json) std::abort();
    if (vit::to_canonical_json(back) != vit::to_canonical_json(c)) std::abort();
  } catch (const vit::Error& e) {
    if (e.kind() != vit::ErrorKind::Config && e.kind() != vit::ErrorKind::Usage) std::abort();
  }
  return 0;
}
