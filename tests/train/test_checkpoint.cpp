// Checkpoints: content round trip, our validation rules, the commit protocol (latest.json,
// retention, abandoned futures), resume search with a corrupt newest file, disk full through
// RLIMIT_FSIZE in a forked child, the free-space pre-check and the run-directory lock.
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/error.hpp"
#include "train/checkpoint.hpp"
#include "train/config.hpp"
#include "train/fsutil.hpp"
#include "train/safetensors.hpp"

using namespace vit;
namespace fs = std::filesystem;

namespace {

struct TempDir {
  std::string path;
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "vit-ckpt-XXXXXX").string();
    path = mkdtemp(tmpl.data());
  }
  ~TempDir() { fs::remove_all(path); }
};

CheckpointState make_state(int64_t step, int64_t weights = 6) {
  CheckpointState s;
  s.config_json = to_canonical_json(Config{});
  s.classes = {"ankle boot", "bag", "coat"};
  s.mean = {0.286f};
  s.std = {0.353f};
  s.data_manifest = "abc123";
  s.train.step = step;
  s.train.epoch = step / 10;
  s.train.epoch_position = (step % 10) * 32;
  s.train.batch_size = 32;
  s.train.seed = 0xFFFFFFFFFFFFFFFFull;
  s.train.best_eval_top1 = 0.75;
  s.train.best_step = step;
  s.train.counters = {{"optim.t", step}, {"favor.redraws", 2}};
  s.train.sums = {{"train_loss", 1.25}};
  std::vector<float> w(static_cast<size_t>(weights));
  for (size_t i = 0; i < w.size(); ++i) w[i] = static_cast<float>(step) + 0.5f * static_cast<float>(i);
  s.tensors["model.head.weight"] = Tensor::from({static_cast<int64_t>(w.size())}, w);
  s.tensors["optim.adamw.v.model.head.weight"] = Tensor::full({static_cast<int64_t>(w.size())}, 0.01f);
  s.tensors["buffer.blocks.0.attn.projection_matrix"] = Tensor::full({2, 3}, -0.5f);
  return s;
}

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string ckpt_dir(const TempDir& d) { return (fs::path(d.path) / "checkpoints").string(); }

std::vector<std::string> listing(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

template <class F>
void expect_error(F f, ErrorKind kind, const std::string& needle) {
  try {
    f();
    ADD_FAILURE() << "no error; wanted " << needle;
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), kind) << e.what();
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

}  // namespace

TEST(Checkpoint, RoundTripIsExactAndDeterministic) {
  const CheckpointState s = make_state(12);
  const std::string bytes = serialize_checkpoint(s);
  const CheckpointState back = parse_checkpoint(bytes, "x");
  EXPECT_EQ(back.config_json, s.config_json);
  EXPECT_EQ(back.classes, s.classes);
  EXPECT_EQ(back.mean, s.mean);
  EXPECT_EQ(back.std, s.std);
  EXPECT_EQ(back.data_manifest, "abc123");
  EXPECT_EQ(back.train.step, 12);
  EXPECT_EQ(back.train.epoch, 1);
  EXPECT_EQ(back.train.epoch_position, 64);
  EXPECT_EQ(back.train.seed, 0xFFFFFFFFFFFFFFFFull);
  EXPECT_EQ(back.train.best_eval_top1, 0.75);
  EXPECT_EQ(back.train.counters, s.train.counters);
  EXPECT_EQ(back.train.sums, s.train.sums);
  ASSERT_EQ(back.tensors.size(), s.tensors.size());
  for (const auto& [name, t] : s.tensors) {
    EXPECT_EQ(back.tensors.at(name).shape(), t.shape()) << name;
    EXPECT_EQ(back.tensors.at(name).to_vector(), t.to_vector()) << name;
  }
  EXPECT_EQ(serialize_checkpoint(back), bytes) << "save -> load -> save is byte-identical";
  const SafeTensors raw = parse_safetensors(bytes, "x");
  EXPECT_EQ(raw.metadata.at("format"), "vit-train-ckpt");
  EXPECT_EQ(raw.metadata.at("format_version"), "1");
}

TEST(Checkpoint, ContentRules) {
  const CheckpointState s = make_state(3);
  auto with_meta = [&](const std::string& key, const std::string& value) {
    SafeTensors raw = parse_safetensors(serialize_checkpoint(s), "x");
    raw.metadata[key] = value;
    std::vector<std::pair<std::string, const Tensor*>> t;
    for (const auto& [n, v] : raw.tensors) t.emplace_back(n, &v);
    return serialize_safetensors(t, raw.metadata);
  };
  expect_error([&] { parse_checkpoint(with_meta("format", "other"), "f"); }, ErrorKind::Data, "not a vit-train checkpoint");
  expect_error([&] { parse_checkpoint(with_meta("format_version", "2"), "f"); }, ErrorKind::Data, "written by a newer vit-train");
  expect_error([&] { parse_checkpoint(with_meta("config", R"({"model":{"dimm":1}})"), "f"); }, ErrorKind::Data,
               "unknown key model.dimm");
  std::string ts = with_meta("train_state", R"({"step":1})");
  expect_error([&] { parse_checkpoint(ts, "f"); }, ErrorKind::Data, "train_state");
  {
    SafeTensors raw = parse_safetensors(serialize_checkpoint(s), "x");
    std::string state = raw.metadata["train_state"];
    state.insert(1, "\"surprise\":1,");
    expect_error([&] { parse_checkpoint(with_meta("train_state", state), "f"); }, ErrorKind::Data, "unknown key surprise");
  }
  CheckpointState neg = s;
  neg.tensors["optim.adamw.v.model.head.weight"][2] = -1e-3f;
  expect_error([&] { parse_checkpoint(serialize_checkpoint(neg), "f"); }, ErrorKind::Data, "second moment");
  CheckpointState nan = s;
  nan.tensors["model.head.weight"][1] = std::nanf("");
  expect_error([&] { serialize_checkpoint(nan); }, ErrorKind::Diverged, "model.head.weight");
}

TEST(Checkpoint, TensorSetMustMatch) {
  const CheckpointState s = make_state(1);
  std::map<std::string, Shape> expected;
  for (const auto& [n, t] : s.tensors) expected[n] = t.shape();
  EXPECT_NO_THROW(check_tensor_set(s, expected, "f"));
  auto e2 = expected;
  e2["model.norm.weight"] = {6};
  e2.erase("buffer.blocks.0.attn.projection_matrix");
  e2["model.head.weight"] = {7};
  try {
    check_tensor_set(s, e2, "f");
    ADD_FAILURE();
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_EQ(e.kind(), ErrorKind::Data);
    EXPECT_NE(m.find("missing: model.norm.weight"), std::string::npos) << m;
    EXPECT_NE(m.find("unexpected: buffer.blocks.0.attn.projection_matrix"), std::string::npos) << m;
    EXPECT_NE(m.find("wrong shape: model.head.weight"), std::string::npos) << m;
  }
}

TEST(Checkpoint, CommitLatestAndRetention) {
  TempDir run;
  for (int64_t step = 1; step <= 5; ++step) {
    const CommitResult r = commit_checkpoint(run.path, make_state(step), /*keep_last=*/2);
    EXPECT_EQ(r.path, (fs::path(ckpt_dir(run)) / checkpoint_file_name(step)).string());
    EXPECT_TRUE(r.warnings.empty());
  }
  EXPECT_EQ(listing(ckpt_dir(run)),
            (std::vector<std::string>{"latest.json", "step-00000004.safetensors", "step-00000005.safetensors"}));
  const std::string latest = slurp(ckpt_dir(run) + "/latest.json");
  EXPECT_NE(latest.find("\"file\":\"step-00000005.safetensors\""), std::string::npos) << latest;
  EXPECT_NE(latest.find("\"step\":5"), std::string::npos) << latest;
  EXPECT_EQ(load_checkpoint(ckpt_dir(run) + "/step-00000005.safetensors").train.step, 5);
  // Resuming from step 4 and committing step 4 again drops the abandoned step 5.
  commit_checkpoint(run.path, make_state(4), 2);
  EXPECT_EQ(listing(ckpt_dir(run)), (std::vector<std::string>{"latest.json", "step-00000004.safetensors"}));
  EXPECT_EQ(find_resume_checkpoint(run.path).state->train.step, 4);
  const std::string best = write_best(run.path, make_state(3));
  EXPECT_EQ(load_checkpoint(best).train.step, 3);
}

TEST(Checkpoint, ResumeSkipsCorruptNewest) {
  TempDir run;
  EXPECT_TRUE(find_resume_checkpoint(run.path).path.empty()) << "no checkpoints yet";
  for (int64_t step = 1; step <= 3; ++step) commit_checkpoint(run.path, make_state(step), 5);
  const std::string newest = ckpt_dir(run) + "/step-00000003.safetensors";
  std::string bytes = slurp(newest);
  bytes[bytes.size() - 2] ^= 0x01;  // bit rot in the data
  std::ofstream(newest, std::ios::binary | std::ios::trunc) << bytes;
  ResumeChoice c = find_resume_checkpoint(run.path);
  EXPECT_EQ(c.path, ckpt_dir(run) + "/step-00000002.safetensors");
  ASSERT_TRUE(c.state.has_value());
  EXPECT_EQ(c.state->train.step, 2);
  ASSERT_EQ(c.skipped.size(), 1u);
  EXPECT_NE(c.skipped[0].find("ChecksumMismatch"), std::string::npos) << c.skipped[0];
  // A truncated newest file (killed writer without the rename protocol) is skipped too.
  std::ofstream(newest, std::ios::binary | std::ios::trunc) << bytes.substr(0, bytes.size() / 2);
  EXPECT_EQ(find_resume_checkpoint(run.path).state->train.step, 2);
  expect_error([&] { load_checkpoint(newest); }, ErrorKind::Data, newest);
  expect_error([&] { load_checkpoint(run.path + "/nope.safetensors"); }, ErrorKind::NoInput, "nope.safetensors");
}

TEST(Checkpoint, DiskFullLeavesPreviousStateIntact) {
  TempDir run;
  commit_checkpoint(run.path, make_state(1), 3);
  const std::string latest_before = slurp(ckpt_dir(run) + "/latest.json");
  const std::string step1_before = slurp(ckpt_dir(run) + "/step-00000001.safetensors");
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    signal(SIGXFSZ, SIG_IGN);
    struct rlimit lim {64 * 1024, 64 * 1024};
    if (setrlimit(RLIMIT_FSIZE, &lim) != 0) _exit(100);
    try {
      commit_checkpoint(run.path, make_state(2, /*weights=*/256 * 1024), 3);  // 1 MiB of weights
      _exit(0);
    } catch (const Error& e) {
      const bool names_it = std::string(e.what()).find("step-00000002") != std::string::npos &&
                            std::string(e.what()).find("File too large") != std::string::npos;
      _exit(names_it ? e.exit_code() : 101);
    } catch (...) {
      _exit(102);
    }
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status)) << "child died by a signal: " << status;
  EXPECT_EQ(WEXITSTATUS(status), 74);
  EXPECT_EQ(listing(ckpt_dir(run)), (std::vector<std::string>{"latest.json", "step-00000001.safetensors"}))
      << "temp file removed, nothing under a final name";
  EXPECT_EQ(slurp(ckpt_dir(run) + "/latest.json"), latest_before);
  EXPECT_EQ(slurp(ckpt_dir(run) + "/step-00000001.safetensors"), step1_before);
  EXPECT_EQ(find_resume_checkpoint(run.path).state->train.step, 1);
}

TEST(Checkpoint, FreeSpacePrecheck) {
  TempDir run;
  commit_checkpoint(run.path, make_state(1), 3);
  setenv("VIT_FAULT_FREE_BYTES", "100", 1);
  expect_error([&] { commit_checkpoint(run.path, make_state(2), 3); }, ErrorKind::Io, "need ");
  unsetenv("VIT_FAULT_FREE_BYTES");
  EXPECT_EQ(listing(ckpt_dir(run)), (std::vector<std::string>{"latest.json", "step-00000001.safetensors"}));
}

TEST(Checkpoint, WriteErrorsAreIo) {
  expect_error([] { write_file_atomic("/nonexistent-dir/x/latest.json", "{}"); }, ErrorKind::Io,
               "/nonexistent-dir/x/latest.json");
}

TEST(Checkpoint, StaleTempFilesOfDeadWritersAreRemoved) {
  TempDir run;
  fs::create_directories(ckpt_dir(run));
  pid_t dead = 4000000;
  while (kill(dead, 0) == 0 || errno != ESRCH) --dead;
  const std::string stale = ckpt_dir(run) + "/.step-00000007.safetensors.tmp." + std::to_string(dead);
  const std::string mine = ckpt_dir(run) + "/.latest.json.tmp." + std::to_string(getpid());
  std::ofstream(stale) << "partial";
  std::ofstream(mine) << "in progress";
  EXPECT_EQ(cleanup_stale_temps(run.path), 1);
  EXPECT_FALSE(fs::exists(stale));
  EXPECT_TRUE(fs::exists(mine));
}

TEST(RunLock, RefusesASecondHolder) {
  TempDir run;
  {
    RunLock first(run.path);
    try {
      RunLock second(run.path);  // separate open file description: flock conflicts
      ADD_FAILURE() << "second lock acquired";
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::CantCreate);
      EXPECT_NE(std::string(e.what()).find(run.path), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("locked by pid " + std::to_string(getpid())), std::string::npos) << e.what();
    }
    const pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      try {
        RunLock other(run.path);
        _exit(0);
      } catch (const Error& e) {
        _exit(e.exit_code());
      }
    }
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 73);
  }
  EXPECT_NO_THROW(RunLock again(run.path)) << "released when the holder goes away";
}
