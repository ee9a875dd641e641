// JSON <-> Config. One schema function, visit_config(), lists every key once with its type and
// per-key range; it runs with a Reader (strict JSON -> struct, collecting every error) or with a
// Writer (struct -> ordered JSON), so the accepted keys and the written keys cannot drift apart.
// Cross-field rules live in config.cpp (validate). This file and checkpoint metadata are the only
// nlohmann users.
#include <cfloat>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <limits>
#include <optional>
#include <set>

#include "core/error.hpp"
#include "train/config.hpp"
#include "train/fsutil.hpp"
#include "train/json_strict.hpp"
#include "train/report.hpp"

namespace vit {
namespace {

using json = nlohmann::json;
using ojson = nlohmann::ordered_json;
constexpr int64_t kMaxI64 = std::numeric_limits<int64_t>::max();

// Allowed interval of a real-valued key.
struct Range {
  double lo = -std::numeric_limits<double>::infinity(), hi = std::numeric_limits<double>::infinity();
  bool lo_open = false, hi_open = false;
  bool contains(double v) const {
    return (lo_open ? v > lo : v >= lo) && (hi_open ? v < hi : v <= hi);
  }
  std::string text() const {
    auto num = [](double v) {
      char buf[32];
      std::snprintf(buf, sizeof buf, "%g", v);
      return std::string(buf);
    };
    if (std::isinf(hi)) return std::string(lo_open ? "> " : ">= ") + num(lo);
    return std::string(lo_open ? "(" : "[") + num(lo) + ", " + num(hi) + (hi_open ? ")" : "]");
  }
};
Range any() { return Range{}; }
Range positive() { return Range{0, INFINITY, true, false}; }
Range non_negative() { return Range{0, INFINITY, false, false}; }
Range unit_open() { return Range{0, 1, false, true}; }    // [0, 1)
Range unit_closed() { return Range{0, 1, false, false}; } // [0, 1]
Range open_closed(double lo, double hi) { return Range{lo, hi, true, false}; }
Range open_open(double lo, double hi) { return Range{lo, hi, true, true}; }

std::string join_path(const std::string& prefix, const std::string& key) {
  return prefix.empty() ? key : prefix + "." + key;
}

std::string show(const json& j) {
  std::string s = j.dump(-1, ' ', false, json::error_handler_t::replace);
  return s.size() > 40 ? s.substr(0, 37) + "..." : s;
}

// Shortest decimal that reads back as the same float, as a double (so 1e-3f is written 0.001).
double float_as_decimal(float x) {
  char buf[32];
  for (int precision = 1; precision <= 9; ++precision) {
    std::snprintf(buf, sizeof buf, "%.*g", precision, static_cast<double>(x));
    if (std::strtof(buf, nullptr) == x) break;
  }
  return std::strtod(buf, nullptr);
}

std::string suggestion(const std::string& key, const std::set<std::string>& known) {
  std::string best;
  size_t best_d = std::numeric_limits<size_t>::max();
  for (const std::string& k : known) {
    const size_t d = edit_distance(key, k);
    if (d < best_d) best_d = d, best = k;
  }
  const size_t limit = std::max<size_t>(2, key.size() / 3);
  return best_d <= limit ? best : std::string();
}

struct Ctx {
  std::string base_dir;
  std::vector<std::string> errors;
};

// JSON -> struct. Every key asked for is "known"; finish() reports the rest as unknown.
class Reader {
 public:
  Reader(const json* obj, std::string path, Ctx* ctx) : obj_(obj), path_(std::move(path)), ctx_(ctx) {}

  template <class I>
  void integer(const char* key, I& out, int64_t lo, int64_t hi = kMaxI64) {
    const json* j = get(key);
    if (!j) return;
    int64_t v = 0;
    if (!as_int64(key, *j, v)) return;
    if (v < lo || v > hi) {
      error(key, hi == kMaxI64 ? "must be >= " + std::to_string(lo) + ", got " + show(*j)
                               : "must be in [" + std::to_string(lo) + ", " + std::to_string(hi) +
                                     "], got " + show(*j));
      return;
    }
    out = static_cast<I>(v);
  }

  void unsigned64(const char* key, uint64_t& out) {
    const json* j = get(key);
    if (!j) return;
    if (j->is_number_unsigned()) {
      out = j->get<uint64_t>();
      return;
    }
    int64_t v = 0;
    if (!as_int64(key, *j, v)) return;
    if (v < 0) return error(key, "must be >= 0, got " + show(*j));
    out = static_cast<uint64_t>(v);
  }

  template <class F>
  void real(const char* key, F& out, Range r) {
    const json* j = get(key);
    if (!j) return;
    double v = 0;
    if (!as_real(key, *j, v)) return;
    if (!r.contains(v)) return error(key, "must be " + in_text(r) + ", got " + show(*j));
    out = static_cast<F>(v);
  }

  void boolean(const char* key, bool& out) {
    const json* j = get(key);
    if (!j) return;
    if (!j->is_boolean()) return type_error(key, "boolean", *j);
    out = j->get<bool>();
  }

  void ignored_string(const char* key) {
    const json* j = get(key);
    if (j && !j->is_string()) type_error(key, "string", *j);
  }

  // A path; relative ones resolve against base_dir (the config file's folder, or the working
  // directory for --set) and are stored absolute, so config.json works from any directory.
  void path(const char* key, std::string& out) {
    const json* j = get(key);
    if (!j) return;
    if (!j->is_string()) return type_error(key, "string", *j);
    out = j->get<std::string>();
    if (!out.empty() && !ctx_->base_dir.empty() && std::filesystem::path(out).is_relative())
      out = std::filesystem::absolute(std::filesystem::path(ctx_->base_dir) / out).lexically_normal().string();
  }

  template <class E>
  void choice(const char* key, E& out, std::initializer_list<std::pair<const char*, E>> options) {
    const json* j = get(key);
    if (!j) return;
    if (!j->is_string()) return type_error(key, "string", *j);
    const std::string s = j->get<std::string>();
    std::set<std::string> names;
    std::string list;
    for (const auto& [name, value] : options) {
      if (s == name) {
        out = value;
        return;
      }
      names.insert(name);
      list += (list.empty() ? "" : "|") + std::string(name);
    }
    const std::string near = suggestion(s, names);
    error(key, "expected one of " + list + ", got " + show(*j) +
                   (near.empty() ? "" : " (did you mean \"" + near + "\"?)"));
  }

  void floats(const char* key, std::vector<float>& out, Range r, size_t min_len, size_t max_len) {
    const json* j = get(key);
    if (!j) return;
    if (!j->is_array()) return type_error(key, "array of numbers", *j);
    if (j->size() < min_len || j->size() > max_len)
      return error(key, "expected " + std::to_string(min_len) + " to " + std::to_string(max_len) +
                            " numbers, got " + std::to_string(j->size()));
    std::vector<float> values;
    for (size_t i = 0; i < j->size(); ++i) {
      const std::string item = std::string(key) + "[" + std::to_string(i) + "]";
      double v = 0;
      if (!as_real(item.c_str(), (*j)[i], v)) return;
      if (!r.contains(v)) return error(item.c_str(), "must be " + in_text(r) + ", got " + show((*j)[i]));
      values.push_back(static_cast<float>(v));
    }
    out = values;
  }

  void pair(const char* key, float& a, float& b, Range r) {
    std::vector<float> v;
    floats(key, v, r, 2, 2);
    if (v.size() == 2) a = v[0], b = v[1];
  }

  template <class Fn>
  void child(const char* key, Fn fn) {
    const json* j = get(key);
    if (!j) return;
    if (!j->is_object()) return type_error(key, "object", *j);
    Reader sub(j, join_path(path_, key), ctx_);
    fn(sub);
    sub.finish();
  }

  // An object that may be null (absent feature): null -> nullopt, object -> defaults + its keys.
  template <class T, class Fn>
  void optional_child(const char* key, std::optional<T>& out, Fn fn) {
    const json* j = get(key);
    if (!j) return;
    if (j->is_null()) {
      out.reset();
      return;
    }
    if (!j->is_object()) return type_error(key, "object or null", *j);
    T value{};
    Reader sub(j, join_path(path_, key), ctx_);
    fn(sub, value);
    sub.finish();
    out = value;
  }

  void finish() {
    if (!obj_) return;
    for (const auto& item : obj_->items()) {
      if (known_.count(item.key())) continue;
      const std::string near = suggestion(item.key(), known_);
      ctx_->errors.push_back("unknown key " + join_path(path_, item.key()) +
                             (near.empty() ? "" : " (did you mean " + join_path(path_, near) + "?)"));
    }
  }

 private:
  const json* get(const char* key) {
    known_.insert(key);
    if (!obj_) return nullptr;
    const auto it = obj_->find(key);
    return it == obj_->end() ? nullptr : &*it;
  }
  void error(const char* key, const std::string& msg) {
    ctx_->errors.push_back(join_path(path_, key) + ": " + msg);
  }
  void type_error(const char* key, const char* expected, const json& j) {
    error(key, std::string("expected ") + expected + ", got " + json_type_name(j) + " " + show(j));
  }
  static std::string in_text(const Range& r) {
    const std::string t = r.text();
    return t[0] == '[' || t[0] == '(' ? "in " + t : t;
  }
  bool as_int64(const char* key, const json& j, int64_t& v) {
    if (j.is_number_unsigned()) {
      if (j.get<uint64_t>() > static_cast<uint64_t>(kMaxI64)) {
        error(key, "too large: " + show(j));
        return false;
      }
      v = static_cast<int64_t>(j.get<uint64_t>());
      return true;
    }
    if (j.is_number_integer()) {
      v = j.get<int64_t>();
      return true;
    }
    if (j.is_number_float()) {
      const double d = j.get<double>();
      if (d != std::floor(d)) {
        error(key, "expected an integer, got " + show(j));
        return false;
      }
      if (std::fabs(d) > 9007199254740992.0) {
        error(key, "too large: " + show(j));
        return false;
      }
      v = static_cast<int64_t>(d);
      return true;
    }
    type_error(key, "integer", j);
    return false;
  }
  bool as_real(const char* key, const json& j, double& v) {
    if (!j.is_number()) {
      type_error(key, "number", j);
      return false;
    }
    v = j.get<double>();
    if (!std::isfinite(v) || std::fabs(v) > FLT_MAX) {
      error(key, "out of range: " + show(j));
      return false;
    }
    return true;
  }

  const json* obj_;
  std::string path_;
  Ctx* ctx_;
  std::set<std::string> known_;
};

// struct -> ordered JSON, keys in schema order.
class Writer {
 public:
  explicit Writer(ojson* obj) : obj_(obj) { *obj_ = ojson::object(); }
  template <class I>
  void integer(const char* key, I& v, int64_t, int64_t = kMaxI64) { (*obj_)[key] = static_cast<int64_t>(v); }
  void unsigned64(const char* key, uint64_t& v) { (*obj_)[key] = v; }
  void real(const char* key, float& v, Range) { (*obj_)[key] = float_as_decimal(v); }
  void real(const char* key, double& v, Range) { (*obj_)[key] = v; }
  void boolean(const char* key, bool& v) { (*obj_)[key] = v; }
  void ignored_string(const char*) {}
  void path(const char* key, std::string& v) { (*obj_)[key] = v; }
  template <class E>
  void choice(const char* key, E& v, std::initializer_list<std::pair<const char*, E>> options) {
    for (const auto& [name, value] : options)
      if (value == v) {
        (*obj_)[key] = name;
        return;
      }
    VIT_ASSERT(false);
  }
  void floats(const char* key, std::vector<float>& v, Range, size_t, size_t) {
    ojson a = ojson::array();
    for (float x : v) a.push_back(float_as_decimal(x));
    (*obj_)[key] = a;
  }
  void pair(const char* key, float& a, float& b, Range) {
    (*obj_)[key] = ojson::array({float_as_decimal(a), float_as_decimal(b)});
  }
  template <class Fn>
  void child(const char* key, Fn fn) {
    ojson sub;
    Writer w(&sub);
    fn(w);
    (*obj_)[key] = sub;
  }
  template <class T, class Fn>
  void optional_child(const char* key, std::optional<T>& value, Fn fn) {
    if (!value) {
      (*obj_)[key] = nullptr;
      return;
    }
    ojson sub;
    Writer w(&sub);
    fn(w, *value);
    (*obj_)[key] = sub;
  }
  void finish() {}

 private:
  ojson* obj_;
};

// The schema: every key, its type and its per-key range, in the order config.json shows them.
template <class V>
void visit_config(V& v, Config& c) {
  v.ignored_string("comment");
  v.ignored_string("description");
  v.child("data", [&](V& d) {
    DataSettings& s = c.data;
    d.path("train", s.train);
    d.path("val", s.val);
    d.integer("image_size", s.image_size, 1, 1 << 16);
    d.integer("channels", s.channels, 1, 3);
    d.floats("mean", s.mean, any(), 1, 3);
    d.floats("std", s.std, positive(), 1, 3);
    d.choice("resize", s.resize, {{"bilinear", ResizeMode::Bilinear}, {"area", ResizeMode::Area}});
    d.child("augment", [&](V& a) {
      AugmentSettings& g = s.augment;
      a.boolean("hflip", g.hflip);
      a.integer("crop_padding", g.crop_padding, 0, 1 << 16);
      a.boolean("random_resized_crop", g.random_resized_crop);
      a.pair("rrc_scale", g.rrc_scale_min, g.rrc_scale_max, open_closed(0, 1));
      a.pair("rrc_ratio", g.rrc_ratio_min, g.rrc_ratio_max, open_open(0, 100));
    });
    d.real("max_bad_fraction", s.max_bad_fraction, unit_closed());
    d.integer("max_file_bytes", s.max_file_bytes, 1);
    d.integer("max_pixels", s.max_pixels, 1);
    d.integer("cache_limit_mb", s.cache_limit_mb, 0);
  });
  v.child("model", [&](V& m) {
    ModelConfig& s = c.model;
    int arch = 0;
    m.choice("arch", arch, {{"vit", 0}});
    m.choice("attention", s.attention, {{"softmax", AttentionKind::Softmax}, {"favor", AttentionKind::Favor}});
    m.integer("patch_size", s.patch_size, 1);
    m.integer("dim", s.dim, 1, 1 << 16);
    m.integer("depth", s.depth, 1, 1024);
    m.integer("heads", s.heads, 1, 1024);
    m.real("mlp_ratio", s.mlp_ratio, open_closed(0, 64));
    m.real("ln_eps", s.ln_eps, open_open(0, 1));
    m.choice("pool", s.pool, {{"cls", Pooling::Cls}, {"mean", Pooling::Mean}});
    m.real("dropout", s.dropout, unit_open());
    m.real("attn_dropout", s.attn_dropout, unit_open());
    m.real("drop_path", s.drop_path, unit_open());
    m.child("favor", [&](V& f) {
      f.integer("features", s.favor.features, 0, 1 << 20);
      f.choice("kernel", s.favor.kernel, {{"softmax", FavorKernel::Softmax}, {"relu", FavorKernel::Relu}});
      f.integer("redraw_interval", s.favor.redraw_interval, 0);
      f.real("eps", s.favor.eps, open_open(0, 1));
    });
  });
  v.child("optim", [&](V& o) {
    OptimSettings& s = c.optim;
    // The lookahead_ prefix is timm's spelling for "wrap in Lookahead"; written back as the object.
    int code = static_cast<int>(s.kind) * 2;
    o.choice("name", code, {{"sgd", 0}, {"lookahead_sgd", 1}, {"adam", 2}, {"lookahead_adam", 3},
                            {"adamw", 4}, {"lookahead_adamw", 5}, {"radam", 6}, {"lookahead_radam", 7}});
    s.kind = static_cast<OptimizerKind>(code / 2);
    o.real("lr", s.lr, positive());
    o.real("weight_decay", s.weight_decay, non_negative());
    o.pair("betas", s.beta1, s.beta2, unit_open());
    o.real("eps", s.eps, open_open(0, 1));
    o.real("momentum", s.momentum, unit_open());
    o.real("dampening", s.dampening, unit_closed());
    o.boolean("nesterov", s.nesterov);
    o.child("radam", [&](V& r) {
      r.real("threshold", s.radam_threshold, non_negative());
      r.choice("policy", s.radam_policy, {{"sgd", RAdamPolicy::Sgd}, {"skip", RAdamPolicy::Skip}});
      r.boolean("decoupled", s.radam_decoupled);
    });
    o.optional_child("lookahead", s.lookahead, [&](V& l, LookaheadSettings& la) {
      l.integer("k", la.k, 1, 1 << 20);
      l.real("alpha", la.alpha, unit_closed());
      l.boolean("sync_before_eval", la.sync_before_eval);
    });
    if (code % 2 == 1 && !s.lookahead) s.lookahead = LookaheadSettings{};
    o.real("clip_grad_norm", s.clip_grad_norm, non_negative());
  });
  v.child("schedule", [&](V& s) {
    ScheduleSettings& h = c.schedule;
    s.choice("name", h.kind, {{"constant", ScheduleKind::Constant}, {"step", ScheduleKind::Step},
                              {"cosine", ScheduleKind::Cosine}});
    s.integer("warmup_steps", h.warmup_steps, 0);
    s.integer("warmup_epochs", c.warmup_epochs, 0);
    s.real("warmup_lr", h.warmup_lr, non_negative());
    s.real("min_lr", h.min_lr, non_negative());
    s.integer("step_size", h.step_size, 0);
    s.real("gamma", h.gamma, open_closed(0, 1));
  });
  v.child("train", [&](V& t) {
    TrainSettings& s = c.train;
    t.integer("epochs", s.epochs, 0);
    t.integer("steps", s.steps, 0);
    t.integer("batch_size", s.batch_size, 1, 1 << 24);
    t.integer("accum_steps", s.accum_steps, 1, 1 << 20);
    t.real("label_smoothing", s.label_smoothing, unit_open());
    t.unsigned64("seed", s.seed);
    t.integer("threads", s.threads, 0, 4096);
    t.integer("eval_every_steps", s.eval_every_steps, 0);
    t.integer("checkpoint_every_steps", s.checkpoint_every_steps, 0);
    t.integer("keep_checkpoints", s.keep_checkpoints, 1);
    t.integer("log_every_steps", s.log_every_steps, 0);
    t.choice("nonfinite", s.nonfinite, {{"abort", NonFinitePolicy::Abort}, {"skip", NonFinitePolicy::Skip}});
    t.integer("max_skipped_steps", s.max_skipped_steps, 0);
    t.real("max_wall_time_s", s.max_wall_time_s, non_negative());
  });
  v.path("out", c.out);
  v.finish();
  c.model.image_size = c.data.image_size;
  c.model.channels = c.data.channels;
}

[[noreturn]] void fail_config(const std::string& source, const std::string& msg) {
  fail(ErrorKind::Config, source, ": ", msg);
}

// Strict parse + schema walk of one document; every error of the document in one message.
Config config_from_document(const json& doc, const std::string& source, const std::string& base_dir) {
  if (!doc.is_object()) fail_config(source, "top level must be an object, got " + json_type_name(doc));
  Config c;
  Ctx ctx{base_dir, {}};
  Reader r(&doc, "", &ctx);
  visit_config(r, c);
  if (!ctx.errors.empty()) {
    std::string msg;
    for (const std::string& e : ctx.errors) msg += (msg.empty() ? "" : "; ") + e;
    fail_config(source, msg);
  }
  return c;
}

json parse_document(const std::string& text, const std::string& source) {
  if (text.find_first_not_of(" \t\r\n") == std::string::npos) fail_config(source, "config is empty");
  StrictJson parsed = parse_json_strict(text);
  if (!parsed.ok) fail_config(source, parsed.error);
  return std::move(parsed.value);
}

ojson to_document(const Config& config) {
  Config copy = config;
  ojson doc;
  Writer w(&doc);
  visit_config(w, copy);
  return doc;
}

}  // namespace

Config parse_config_string(const std::string& text, const std::string& source, const std::string& base_dir) {
  return config_from_document(parse_document(text, source), source, base_dir);
}

Config parse_config_file(const std::string& path) {
  const std::string text = read_file(path, "config");
  std::string base = std::filesystem::path(path).parent_path().string();
  if (base.empty()) base = ".";
  return parse_config_string(text, path, base);
}

void apply_override(Config& config, const std::string& assignment) {
  const std::string source = "--set " + assignment;
  const size_t eq = assignment.find('=');
  if (eq == std::string::npos || eq == 0) fail_config(source, "expected key.path=value");
  const std::string key = assignment.substr(0, eq);
  const std::string text = assignment.substr(eq + 1);
  std::vector<std::string> parts;
  for (size_t start = 0;;) {
    const size_t dot = key.find('.', start);
    parts.push_back(key.substr(start, dot == std::string::npos ? std::string::npos : dot - start));
    if (parts.back().empty()) fail_config(source, "empty component in key '" + key + "'");
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  if (!valid_utf8(text)) fail_config(source, key + ": the value is not valid UTF-8 text");
  StrictJson value = parse_json_strict(text);
  if (value.overflow) fail_config(source, key + ": " + value.error);
  const json parsed = value.ok ? value.value : json(text);  // not JSON: taken as a string

  json doc = json::parse(to_document(config).dump());
  json* node = &doc;
  std::string walked;
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    walked = join_path(walked, parts[i]);
    json& next = (*node)[parts[i]];
    if (next.is_null()) next = json::object();  // absent or null object (lookahead): create it
    if (!next.is_object())
      fail_config(source, walked + " is a " + json_type_name(next) + ", not a section");
    node = &next;
  }
  (*node)[parts.back()] = parsed;
  Config updated = config_from_document(doc, source, std::filesystem::current_path().string());
  updated.model.num_classes = config.model.num_classes;    // set from the data, not the config
  updated.schedule.total_steps = config.schedule.total_steps;
  config = updated;
}

std::string to_json(const Config& config) { return to_document(config).dump(2) + "\n"; }

std::string to_canonical_json(const Config& config) {
  return json::parse(to_document(config).dump()).dump();
}

namespace {
// Every string of a config document must be valid UTF-8 (JSON text); the first that is not is
// named by its key path.
void require_utf8(const json& j, const std::string& path) {
  if (j.is_string() && !valid_utf8(j.get_ref<const std::string&>()))
    fail_config("config", path + ": not valid UTF-8 text");
  if (j.is_structured())
    for (const auto& item : j.items())
      require_utf8(item.value(), j.is_object() ? join_path(path, item.key()) : path + "[" + item.key() + "]");
}
}  // namespace

namespace detail {
// Per-key re-check for structs built in code (validate() calls it): the schema's rules, not a copy.
void check_per_key_rules(const Config& config) {
  const json doc = to_document(config);
  require_utf8(doc, "");
  (void)config_from_document(json::parse(doc.dump()), "config", "");
}
}  // namespace detail

}  // namespace vit
