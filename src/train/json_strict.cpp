// Strict JSON parsing (see json_strict.hpp): duplicate keys are caught with a parser callback
// that keeps the set of keys seen per open object, and the path of open objects for the message.
#include "train/json_strict.hpp"

#include <set>
#include <vector>

namespace vit {
namespace {

struct DuplicateKey {
  std::string path;
};

struct Frame {
  bool is_object = false;
  std::set<std::string> keys;
  std::string current_key;
};

// The dotted key path of the open objects ("optim.lr"; "[]" for an array level).
std::string key_path(const std::vector<Frame>& stack) {
  std::string path;
  for (const Frame& f : stack) path += (path.empty() ? "" : ".") + f.current_key;
  return path;
}

}  // namespace

std::string json_error_text(const std::exception& e) {
  std::string msg = e.what();
  if (msg.rfind("[json.exception.", 0) == 0) {
    const size_t close = msg.find("] ");
    if (close != std::string::npos) msg = msg.substr(close + 2);
  }
  return msg;
}

std::string json_type_name(const nlohmann::json& j) {
  if (j.is_number_float()) return "number";
  if (j.is_number()) return "integer";
  return j.type_name();
}

StrictJson parse_json_strict(const std::string& text) {
  StrictJson out;
  std::vector<Frame> stack;
  auto callback = [&stack](int /*depth*/, nlohmann::json::parse_event_t event,
                           nlohmann::json& parsed) -> bool {
    using E = nlohmann::json::parse_event_t;
    switch (event) {
      case E::object_start: stack.push_back(Frame{true, {}, {}}); break;
      case E::array_start: stack.push_back(Frame{false, {}, "[]"}); break;
      case E::object_end:
      case E::array_end:
        if (!stack.empty()) stack.pop_back();
        break;
      case E::key: {
        Frame& top = stack.back();
        const std::string key = parsed.get<std::string>();
        top.current_key = key;
        if (!top.keys.insert(key).second) {
          throw DuplicateKey{key_path(stack)};
        }
        break;
      }
      case E::value: break;
    }
    return true;
  };
  try {
    out.value = nlohmann::json::parse(text, callback, /*allow_exceptions=*/true,
                                      /*ignore_comments=*/false);
    out.ok = true;
  } catch (const DuplicateKey& d) {
    out.error = "duplicate key " + d.path;
  } catch (const nlohmann::json::out_of_range& e) {  // a number overflowing a double: no
    const std::string path = key_path(stack);          // position, so name the key
    out.error = (path.empty() ? "" : path + ": ") + json_error_text(e);
    out.overflow = true;
  } catch (const nlohmann::json::exception& e) {
    out.error = json_error_text(e);
  }
  return out;
}

}  // namespace vit
