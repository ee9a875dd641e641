// Strict config parsing: every rule gives ErrorKind::Config (or NoInput for a missing file) with the
// source and the key path in the message; precedence, path resolution, round trip and presets.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>

#include "core/error.hpp"
#include "train/config.hpp"

using namespace vit;
namespace fs = std::filesystem;

namespace {

struct TempDir {
  std::string path;
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "vit-cfg-XXXXXX").string();
    path = mkdtemp(tmpl.data());
  }
  ~TempDir() { fs::remove_all(path); }
  std::string write(const std::string& name, const std::string& text) const {
    const fs::path p = fs::path(path) / name;
    fs::create_directories(p.parent_path());
    std::ofstream(p) << text;
    return p.string();
  }
};

// Run f, expect an Error of `kind` whose message contains every needle.
template <class F>
void expect_error(F f, ErrorKind kind, std::initializer_list<std::string> needles) {
  try {
    f();
    ADD_FAILURE() << "no error thrown";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), kind) << e.what();
    for (const std::string& n : needles) EXPECT_NE(std::string(e.what()).find(n), std::string::npos)
                                             << "'" << n << "' not in: " << e.what();
  }
}

void expect_file_error(const std::string& text, std::initializer_list<std::string> needles) {
  TempDir dir;
  const std::string path = dir.write("c.json", text);
  std::vector<std::string> all(needles);
  all.push_back(path);
  try {
    parse_config_file(path);
    ADD_FAILURE() << "no error for " << text;
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Config) << e.what();
    for (const std::string& n : all)
      EXPECT_NE(std::string(e.what()).find(n), std::string::npos) << "'" << n << "' not in: " << e.what();
  }
}

}  // namespace

TEST(Config, DefaultsValidate) { EXPECT_NO_THROW(validate(Config{})); }

TEST(Config, UnknownKeySuggestsNearest) {
  expect_file_error(R"({"model": {"dimm": 64}})", {"unknown key model.dimm (did you mean model.dim?)"});
  expect_file_error(R"({"modle": {}})", {"unknown key modle (did you mean model?)"});
  expect_file_error(R"({"train": {"zzzzzzzz": 1}})", {"unknown key train.zzzzzzzz"});
}

TEST(Config, DuplicateKeyIsAnError) {
  expect_file_error(R"({"optim": {"lr": 0.1, "lr": 10}})", {"duplicate key optim.lr"});
  expect_file_error(R"({"train": {}, "train": {}})", {"duplicate key train"});
}

TEST(Config, WrongTypes) {
  expect_file_error(R"({"optim": {"lr": "0.1"}})", {"optim.lr: expected number, got string"});
  expect_file_error(R"({"train": {"epochs": true}})", {"train.epochs: expected integer"});
  expect_file_error(R"({"optim": {"nesterov": 1}})", {"optim.nesterov: expected boolean"});
  expect_file_error(R"({"data": {"mean": 0.5}})", {"data.mean: expected array"});
  expect_file_error(R"({"model": {"attention": "performer"}})", {"model.attention: expected one of softmax|favor"});
  expect_file_error(R"({"model": 3})", {"model: expected object"});
}

TEST(Config, IntegerRules) {
  expect_file_error(R"({"train": {"epochs": 10.7}})", {"train.epochs: expected an integer, got 10.7"});
  expect_file_error(R"({"train": {"batch_size": -1}})", {"train.batch_size: must be"});
  expect_file_error(R"({"train": {"seed": -1}})", {"train.seed: must be >= 0"});
  expect_file_error(R"({"model": {"depth": 0}})", {"model.depth"});
  // An integral float is an integer.
  TempDir dir;
  EXPECT_EQ(parse_config_file(dir.write("c.json", R"({"train": {"epochs": 12.0}})")).train.epochs, 12);
  EXPECT_EQ(parse_config_file(dir.write("d.json", R"({"train": {"seed": 18446744073709551615}})")).train.seed,
            18446744073709551615ull);
}

TEST(Config, RangesAllReportedAtOnce) {
  TempDir dir;
  const std::string path = dir.write("c.json", R"({"model": {"dropout": 1.5}, "optim": {"lr": 0, "betas": [0.9, 1.0]}})");
  expect_error([&] { parse_config_file(path); }, ErrorKind::Config,
               {path, "model.dropout: must be in [0, 1)", "optim.lr: must be > 0", "optim.betas[1]"});
  // A number overflowing a double has no position from the parser: its key path is named.
  expect_file_error(R"({"optim": {"lr": 1e400}})", {"optim.lr: number overflow parsing '1e400'"});
  expect_file_error(R"({"data": {"mean": [0.5, -1e999]}})", {"data.mean.[]: number overflow"});
  expect_file_error(R"({"optim": {"weight_decay": -0.1}})", {"optim.weight_decay"});
  expect_file_error(R"({"optim": {"lookahead": {"alpha": 1.5}}})", {"optim.lookahead.alpha"});
  expect_file_error(R"({"optim": {"lookahead": {"k": 0}}})", {"optim.lookahead.k"});
}

TEST(Config, SyntaxErrorsCarryPosition) {
  expect_file_error("{\n  \"train\": {\"epochs\": 3,}\n}", {"line 2"});
  expect_file_error("{\"train\": {} // comment\n}", {"line 1"});
  expect_file_error("  \n", {"config is empty"});
  expect_file_error("[1, 2]", {"top level must be an object"});
}

TEST(Config, MissingFileIsNoInput) {
  expect_error([] { parse_config_file("/nonexistent/dir/c.json"); }, ErrorKind::NoInput,
               {"/nonexistent/dir/c.json", "No such file"});
  TempDir dir;
  expect_error([&] { parse_config_file(dir.path); }, ErrorKind::NoInput, {dir.path});
}

TEST(Config, RelativePathsResolveAgainstTheFile) {
  TempDir dir;
  const std::string path = dir.write(
      "configs/c.json", R"({"data": {"train": "../data/x/train", "val": "/abs/val"}, "out": "runs/a"})");
  const Config c = parse_config_file(path);
  EXPECT_EQ(c.data.train, (fs::path(dir.path) / "data/x/train").string());
  EXPECT_EQ(c.data.val, "/abs/val");
  EXPECT_EQ(c.out, (fs::path(dir.path) / "configs/runs/a").string());
  // Given by a relative path from elsewhere, the result is the same absolute path.
  const fs::path cwd = fs::current_path();
  fs::current_path(fs::path(dir.path) / "configs");
  const Config rel = parse_config_file("c.json");
  fs::current_path(cwd);
  EXPECT_EQ(rel.data.train, c.data.train);
}

TEST(Config, OverridesApplyInOrderOnTopOfTheFile) {
  TempDir dir;
  Config c = parse_config_file(dir.write("c.json", R"({"optim": {"lr": 0.1}, "data": {"train": "t"}})"));
  EXPECT_FLOAT_EQ(c.optim.lr, 0.1f);
  apply_override(c, "optim.lr=0.2");
  apply_override(c, "optim.lr=0.3");
  EXPECT_FLOAT_EQ(c.optim.lr, 0.3f);
  EXPECT_EQ(c.data.train, (fs::path(dir.path) / "t").string()) << "file paths stay resolved";
  apply_override(c, "data.val=rel/val");  // not JSON: taken as a string, relative to the cwd
  EXPECT_EQ(c.data.val, (fs::current_path() / "rel/val").string());
  apply_override(c, "data.mean=[0.25]");
  ASSERT_EQ(c.data.mean.size(), 1u);
  EXPECT_FLOAT_EQ(c.data.mean[0], 0.25f);
  apply_override(c, "optim.name=lookahead_radam");
  EXPECT_EQ(c.optim.kind, OptimizerKind::RAdam);
  ASSERT_TRUE(c.optim.lookahead.has_value());
  EXPECT_EQ(c.optim.lookahead->k, LookaheadSettings{}.k);
  apply_override(c, "optim.lookahead.k=6");
  EXPECT_EQ(c.optim.lookahead->k, 6);
  apply_override(c, "optim.lookahead=null");
  EXPECT_FALSE(c.optim.lookahead.has_value());
  apply_override(c, "optim.lookahead.alpha=0.6");  // creates the object: enables Lookahead
  ASSERT_TRUE(c.optim.lookahead.has_value());
  EXPECT_FLOAT_EQ(c.optim.lookahead->alpha, 0.6f);
  apply_override(c, "out=/runs/somewhere");
  EXPECT_EQ(c.out, "/runs/somewhere");
}

TEST(Config, OverrideErrorsNameTheAssignment) {
  Config c;
  expect_error([&] { apply_override(c, "model.dimm=3"); }, ErrorKind::Config,
               {"--set model.dimm=3", "unknown key model.dimm (did you mean model.dim?)"});
  expect_error([&] { apply_override(c, "train.epochs=2.5"); }, ErrorKind::Config, {"train.epochs"});
  expect_error([&] { apply_override(c, "train.seed=007"); }, ErrorKind::Config, {"train.seed: expected integer, got string"});
  expect_error([&] { apply_override(c, "train.epochs.x=1"); }, ErrorKind::Config, {"train.epochs is a"});
  expect_error([&] { apply_override(c, "optim.lr=1e400"); }, ErrorKind::Config,
               {"--set optim.lr=1e400", "optim.lr: number overflow parsing '1e400'"});  // not a string
  // Text config.json could not record (a path with a byte that is not UTF-8) is refused, not
  // altered; the fuzzer found it crashing validate() before.
  expect_error([&] { apply_override(c, "out=/tmp/x\xaey"); }, ErrorKind::Config,
               {"out: the value is not valid UTF-8 text"});
  expect_error([&] { apply_override(c, "optim.lr"); }, ErrorKind::Config, {"key.path=value"});
  expect_error([&] { apply_override(c, "optim..lr=1"); }, ErrorKind::Config, {"empty component"});
  const Config before = c;
  EXPECT_THROW(apply_override(c, "optim.lr=-1"), Error);
  EXPECT_EQ(to_json(c), to_json(before)) << "a failed override leaves the config unchanged";
}

TEST(Config, CrossFieldRules) {
  auto expect_invalid = [](auto mutate, const std::string& needle) {
    Config c;
    mutate(c);
    expect_error([&] { validate(c); }, ErrorKind::Config, {needle});
  };
  expect_invalid([](Config& c) { c.model.dim = 192, c.model.heads = 5; }, "model.heads (5) must divide model.dim (192)");
  expect_invalid([](Config& c) { apply_override(c, "data.image_size=30"); }, "must divide data.image_size (30)");
  expect_invalid([](Config& c) { apply_override(c, "model.patch_size=32"); }, "larger than data.image_size");
  expect_invalid([](Config& c) { apply_override(c, "data.channels=2"); }, "data.channels must be 1 or 3");
  expect_invalid([](Config& c) { apply_override(c, "data.channels=3"), apply_override(c, "data.mean=[0.1,0.2]"); },
                 "data.mean needs 1 or data.channels (3) values, got 2");
  expect_invalid([](Config& c) { c.train.epochs = 0; }, "train.epochs or train.steps");
  expect_invalid([](Config& c) { apply_override(c, "schedule.name=\"step\""); }, "schedule.step_size");
  expect_invalid([](Config& c) { c.optim.lr = -1.0f; }, "optim.lr: must be > 0");  // per-key rule re-run
  expect_invalid([](Config& c) { c.model.dropout = 1.5f; }, "model.dropout");
  expect_invalid([](Config& c) { c.data.train = "/data/\xc3("; }, "data.train: not valid UTF-8 text");
}

TEST(Config, RoundTripThroughJson) {
  Config c;
  apply_override(c, "optim.lr=0.00123");
  apply_override(c, "optim.name=lookahead_sgd");
  apply_override(c, "model.attention=favor");
  apply_override(c, "data.augment.rrc_scale=[0.3, 0.9]");
  apply_override(c, "train.seed=12345678901234");
  apply_override(c, "data.train=/x/train");
  const std::string text = to_json(c);
  EXPECT_NE(text.find("\"lr\": 0.00123"), std::string::npos) << text;
  const Config back = parse_config_string(text, "roundtrip");
  EXPECT_EQ(to_json(back), text);
  EXPECT_EQ(back.optim.lr, c.optim.lr);
  EXPECT_EQ(back.optim.kind, OptimizerKind::Sgd);
  EXPECT_TRUE(back.optim.lookahead.has_value());
  EXPECT_EQ(back.model.attention, AttentionKind::Favor);
  EXPECT_EQ(back.data.augment.rrc_scale_min, 0.3f);
  EXPECT_EQ(back.train.seed, 12345678901234ull);
  EXPECT_EQ(back.data.train, "/x/train");
  EXPECT_EQ(to_canonical_json(back), to_canonical_json(c));
  EXPECT_EQ(to_canonical_json(c).find(' '), std::string::npos);
}

TEST(Config, EditDistance) {
  EXPECT_EQ(edit_distance("", "abc"), 3u);
  EXPECT_EQ(edit_distance("dimm", "dim"), 1u);
  EXPECT_EQ(edit_distance("dpeth", "depth"), 2u);
  EXPECT_EQ(edit_distance("kitten", "sitting"), 3u);
}

TEST(Config, PresetsParseAndValidate) {
  const fs::path dir = fs::path(VIT_SOURCE_DIR) / "configs";
  int count = 0;
  for (const char* name : {"quickstart.json", "vit-fmnist.json", "performer-fmnist.json", "vit-cifar-like.json",
                           "performer-long.json"}) {
    SCOPED_TRACE(name);
    const Config c = parse_config_file((dir / name).string());
    EXPECT_NO_THROW(validate(c));
    EXPECT_EQ(c.data.train.rfind((fs::path(VIT_SOURCE_DIR) / "data").string(), 0), 0u) << c.data.train;
    ++count;
  }
  EXPECT_EQ(count, 5);
  const Config quick = parse_config_file((dir / "quickstart.json").string());
  EXPECT_TRUE(fs::is_directory(quick.data.train)) << "bundled data: " << quick.data.train;
  EXPECT_TRUE(fs::is_directory(quick.data.val)) << quick.data.val;
}
