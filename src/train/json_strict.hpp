// Internal to src/train: strict JSON parsing on top of nlohmann/json (which silently keeps the last
// of duplicate keys). Used by the config parser and the safetensors header reader only; include
// it from .cpp files, never from public headers (nlohmann is a private dependency of vitcore).
#pragma once
#include <string>

#include <nlohmann/json.hpp>

namespace vit {

struct StrictJson {
  bool ok = false;
  nlohmann::json value;
  std::string error;  // "line L, column C: ...", "duplicate key a.b" or "a.b: number overflow
                      // parsing '1e400'"; empty when ok
  bool overflow = false;  // the error is a number out of a double's range
};

// Parse `text` as one JSON document: no comments, no trailing commas, no duplicate keys at any
// depth (the key path, dotted, is named), numbers that overflow a double are errors.
StrictJson parse_json_strict(const std::string& text);

// Strip nlohmann's "[json.exception.xxx.NNN] " prefix from an exception message.
std::string json_error_text(const std::exception& e);

// Short JSON type name for messages: "string", "number", "integer", "boolean", "object", ...
std::string json_type_name(const nlohmann::json& j);

}  // namespace vit
