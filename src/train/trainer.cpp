// The training loop. One global step S counts completed optimizer updates; everything a resume
// needs follows from S and the checkpoint: the epoch is S / steps_per_epoch, the batch position
// inside it (S % steps_per_epoch) * accum_steps, the learning rate learning_rate(S), the dropout
// masks Rng(seed, Dropout, micro-step, site), the FAVOR+ projections (seed, S / redraw_interval).
// So "N steps straight" and "N/2, stop, resume, N/2" give the same bits.
// Data-parallel (several ranks, dist/): every rank holds the model and takes its share of each
// global batch; gradients are averaged across ranks before clipping, so all ranks take the same
// step. Rank 0 alone writes files and stdout; local work runs inside sync() so that a failure
// on any rank makes all ranks stop at the same point with the same error (dist/agree.hpp).
#include "train/trainer.hpp"

#include <chrono>
#include <cmath>
#include <csignal>
#include <filesystem>
#include <functional>
#include <memory>
#include <utility>

#include <spdlog/spdlog.h>

#include "core/parallel.hpp"
#include "data/loader.hpp"
#include "dist/agree.hpp"
#include "dist/grad_reducer.hpp"
#include "dist/state_sync.hpp"
#include "dist/threads.hpp"
#include "kernels/gemm.hpp"
#include "nn/vit.hpp"
#include "optim/clip.hpp"
#include "optim/make_optimizer.hpp"
#include "optim/schedule.hpp"
#include "train/checkpoint.hpp"
#include "train/evaluator.hpp"
#include "train/fsutil.hpp"
#include "train/progress.hpp"
#include "train/safetensors.hpp"
#include "train/signals.hpp"

namespace vit {
namespace {

using Clock = std::chrono::steady_clock;

std::string default_run_dir(const Config& c) {
  const auto now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  char buf[64];
  std::strftime(buf, sizeof buf, "%Y%m%d-%H%M%S", std::localtime(&now));
  return std::string("runs/") + buf + (c.model.attention == AttentionKind::Favor ? "-performer" : "-vit");
}

// Canonical JSON of the model section alone: what must not change across a resume.
std::string model_signature(const Config& c) {
  Config only_model;
  only_model.model = c.model;
  only_model.data.image_size = c.data.image_size;
  only_model.data.channels = c.data.channels;
  return to_canonical_json(only_model);
}

uint64_t manifest_hash(const ImageFolder& folder) {
  uint64_t h = mix64(folder.classes.size());
  for (const auto& c : folder.classes) h = mix64(h ^ xxh64(c.data(), c.size()));
  for (const auto& smp : folder.samples) {
    const std::string rel = std::filesystem::path(smp.path).lexically_relative(folder.root).string();
    h = mix64(h ^ xxh64(rel.data(), rel.size()) ^ static_cast<uint64_t>(smp.label));
  }
  return h;
}

constexpr const char* kModelPrefix = "model.";

class Trainer {
 public:
  Trainer(Config config, TrainOptions options, JsonLines& out, Communicator& comm)
      : cfg_(std::move(config)), opt_(std::move(options)), out_(out), comm_(comm) {}

  FinalRecord run(int& signal);

 private:
  void prepare_run_dir();
  void load_data();
  void build_model();
  void resume_or_init();
  void train_step();
  EvalResult eval_now();
  void after_eval(const EvalResult& r);
  CheckpointState snapshot(bool weights_only);
  void save(const char* why);
  double elapsed_s() const { return std::chrono::duration<double>(Clock::now() - start_).count(); }
  // Data-parallel plumbing; each is exactly `fn()` / nothing for a single process.
  void sync(const std::function<void()>& fn) { agree(comm_, fn); }
  void lead_io(const std::function<void()>& fn);  // rank 0 only; its error is agreed at the next sync_io()
  void sync_io();
  void replicate_from_lead();

  Config cfg_;
  TrainOptions opt_;
  JsonLines& out_;
  Communicator& comm_;
  std::unique_ptr<GradReducer> reducer_;  // several ranks only
  std::exception_ptr io_error_;           // rank 0's file/stdout error, pending until sync_io()
  int64_t dropout_key_offset_ = 0;        // rank << 40: ranks draw different dropout masks
  double step_s_ = 0;                     // time in train_step (for the allreduce share)
  FinalRecord fin_;
  std::string dir_;
  std::unique_ptr<RunLock> lock_;
  std::unique_ptr<RunFiles> files_;
  std::unique_ptr<ImageDataset> train_set_, val_set_;
  std::unique_ptr<DataLoader> loader_;
  std::unique_ptr<ViT> model_;
  std::unique_ptr<Optimizer> optim_;
  std::vector<NamedParam> params_;

  int64_t steps_per_epoch_ = 0, total_steps_ = 0, step_ = 0, skipped_ = 0;
  double best_top1_ = -1;
  std::optional<double> last_top1_;
  std::string last_checkpoint_;
  uint64_t data_hash_ = 0;
  Clock::time_point start_ = Clock::now();
  // Running means over the current epoch, for summary.csv.
  double epoch_loss_ = 0, epoch_hits_ = 0, epoch_seen_ = 0;
  double last_loss_ = 0, last_grad_norm_ = 0;
  Clock::time_point epoch_start_ = Clock::now();
};

void Trainer::prepare_run_dir() {
  dir_ = cfg_.out.empty() ? default_run_dir(cfg_) : cfg_.out;
  cfg_.out = dir_;
  ensure_dir(dir_);
  ensure_dir(dir_ + "/checkpoints");
  lock_ = std::make_unique<RunLock>(dir_);
  const int stale = cleanup_stale_temps(dir_);
  if (stale) spdlog::warn("removed {} stale temporary file(s) left by a killed writer", stale);
  files_ = std::make_unique<RunFiles>(dir_);
}

void Trainer::load_data() {
  ImageFolder train_folder = scan_image_folder(cfg_.data.train);
  spdlog::info("train data {}: {} classes, {} images ({} other files skipped)", cfg_.data.train,
               train_folder.classes.size(), train_folder.samples.size(), train_folder.skipped_files);
  std::optional<ImageFolder> val_folder;
  if (!cfg_.data.val.empty()) {
    val_folder = scan_image_folder(cfg_.data.val);
    check_same_classes(train_folder, *val_folder, "validation folder " + cfg_.data.val);
  }
  if (train_folder.classes.size() < 2)
    fail(ErrorKind::Data, "training folder '", cfg_.data.train, "' has only one class ('", train_folder.classes[0],
         "'): a classifier needs at least two class sub-folders");
  data_hash_ = manifest_hash(train_folder);
  // A single process stops decoding at once on SIGINT/SIGTERM (ranks must agree, so they finish).
  const std::function<bool()> cancelled = comm_.distributed() ? std::function<bool()>() : [] { return stop_signal() != 0; };
  train_set_ = std::make_unique<ImageDataset>(std::move(train_folder), cfg_.data, cancelled);
  spdlog::info("train set: {} images decoded{}", train_set_->size(),
               train_set_->cached() ? fmt::format(", cached in RAM ({:.1f} MiB)", train_set_->cache_bytes() / 1048576.0)
                                    : std::string(", streamed from disk (over cache_limit_mb)"));
  if (val_folder) {
    val_set_ = std::make_unique<ImageDataset>(std::move(*val_folder), cfg_.data, cancelled);
    spdlog::info("val set: {} images", val_set_->size());
  }
  cfg_.model.num_classes = static_cast<int64_t>(train_set_->classes().size());
  cfg_.model.image_size = cfg_.data.image_size;
  cfg_.model.channels = cfg_.data.channels;
  loader_ = std::make_unique<DataLoader>(*train_set_, cfg_.data,
                                         LoaderOptions{cfg_.train.batch_size, true, cfg_.train.seed, comm_.rank(), comm_.size()});
  steps_per_epoch_ = loader_->batches_per_epoch() / cfg_.train.accum_steps;
  if (steps_per_epoch_ < 1)
    fail(ErrorKind::Config, "train.accum_steps ", cfg_.train.accum_steps, " exceeds the ", loader_->batches_per_epoch(),
         " batches per epoch");
  total_steps_ = cfg_.train.steps > 0 ? cfg_.train.steps : cfg_.train.epochs * steps_per_epoch_;
  cfg_.schedule.total_steps = total_steps_;
  if (cfg_.warmup_epochs > 0 && cfg_.schedule.warmup_steps == 0)
    cfg_.schedule.warmup_steps = epochs_to_steps(static_cast<double>(cfg_.warmup_epochs), steps_per_epoch_);
  if (cfg_.schedule.kind == ScheduleKind::Cosine && cfg_.schedule.warmup_steps >= total_steps_)
    cfg_.schedule.warmup_steps = total_steps_ / 2;  // keep a valid cosine for tiny budgets
  validate(cfg_.schedule);
}

void Trainer::build_model() {
  validate(cfg_.model);
  model_ = std::make_unique<ViT>(cfg_.model, cfg_.train.seed);
  if (!opt_.init_weights.empty() && comm_.lead()) {
    SafeTensors w = read_safetensors(opt_.init_weights);
    StateDict state;
    const auto own = model_->state_dict(false);
    for (const auto& [name, t] : own) {
      auto it = w.tensors.find(name);
      if (it == w.tensors.end()) continue;
      if (it->second.numel() != t.numel() && name.rfind("head.", 0) == 0) {
        spdlog::warn("--init-weights: {} has {} values, the model {}: head re-initialised", name,
                     it->second.numel(), t.numel());
        continue;
      }
      state.emplace_back(name, it->second);
    }
    with_source(opt_.init_weights, [&] { model_->load_state_dict(state, /*strict=*/false); });
    spdlog::info("initialised {} tensors from {}", state.size(), opt_.init_weights);
  }
  params_ = model_->parameters();
  optim_ = make_optimizer(cfg_.optim, params_);
  model_->train(true);
}

void Trainer::resume_or_init() {
  std::optional<CheckpointState> ck;
  std::string path;
  if (opt_.resume == "auto") {
    ResumeChoice choice = find_resume_checkpoint(dir_);
    for (const auto& s : choice.skipped) spdlog::warn("--resume auto: skipped {}", s);
    if (choice.path.empty()) {
      spdlog::info("--resume auto: no checkpoint in {}, starting fresh", dir_);
      return;
    }
    path = choice.path;
    ck = std::move(choice.state);
  } else if (!opt_.resume.empty()) {
    path = opt_.resume;
    ck = load_checkpoint(path);
  } else {
    return;
  }
  if (ck->train.counters.count("weights_only"))
    fail(ErrorKind::Data, path, ": holds weights only (no optimizer state), cannot resume from it");
  const Config saved = parse_config_string(ck->config_json, path + " (config)");
  if (model_signature(saved) != model_signature(cfg_))
    fail(ErrorKind::Config, "the model in ", path, " differs from the config's: ", model_signature(saved), " vs ",
         model_signature(cfg_));
  if (ck->classes != train_set_->classes())
    fail(ErrorKind::Data, path, ": class list differs from the training folder's");
  if (ck->data_manifest != hex64(data_hash_))
    fail(ErrorKind::Data, path, ": the training folder changed since this checkpoint (manifest hash differs)");
  const int64_t saved_world = ck->train.counters.count("dist.world_size") ? ck->train.counters.at("dist.world_size") : 1;
  if (saved_world != comm_.size())
    spdlog::warn("resuming with {} rank(s), the checkpoint was written by {}: same global batch, so the same samples "
                 "per step; gradient sums round differently and dropout masks of ranks > 0 differ", comm_.size(), saved_world);
  if (ck->train.threads != num_threads()) {
    spdlog::warn("resuming with {} threads, the checkpoint was written with {}", num_threads(), ck->train.threads);
  }
  StateDict model_state;
  OptimState optim_state;
  const size_t np = std::string(kModelPrefix).size();
  for (auto& [name, t] : ck->tensors) {
    if (name.rfind(kModelPrefix, 0) == 0) model_state.emplace_back(name.substr(np), t);
    else optim_state.tensors.emplace_back(name, t);
  }
  for (auto& [name, v] : ck->train.counters) optim_state.ints.emplace_back(name, v);
  with_source(path, [&] {
    model_->load_state_dict(model_state, true);
    optim_->load_state(optim_state);
  });
  step_ = ck->train.step;
  skipped_ = ck->train.skipped_steps;
  best_top1_ = ck->train.best_eval_top1;
  if (ck->train.sums.count("last_eval_top1")) last_top1_ = ck->train.sums.at("last_eval_top1");
  epoch_loss_ = ck->train.sums.count("epoch_loss") ? ck->train.sums.at("epoch_loss") : 0;
  epoch_hits_ = ck->train.sums.count("epoch_hits") ? ck->train.sums.at("epoch_hits") : 0;
  epoch_seen_ = ck->train.sums.count("epoch_seen") ? ck->train.sums.at("epoch_seen") : 0;
  last_checkpoint_ = path;
  fin_.resumed_from = path;
  spdlog::info("resumed from {} at step {}", path, step_);
}

void Trainer::train_step() {
  const auto t0 = Clock::now();
  const int64_t accum = cfg_.train.accum_steps;
  double loss_sum = 0, hits = 0, seen = 0;
  sync([&] {
    model_->maybe_redraw(step_, cfg_.train.seed);
    for (int64_t micro = 0; micro < accum; ++micro) {
      Batch batch = loader_->next();
      Var logits = model_->forward(batch.images, step_ * accum + micro + dropout_key_offset_);
      Var loss = ViT::loss(logits, batch.labels, cfg_.train.label_smoothing);
      const float l = loss.value()[0];
      loss_sum += l;
      backward(accum > 1 ? scale(loss, 1.0f / static_cast<float>(accum)) : loss);
      // train top-1 on the fly (cheap: B x K)
      const int64_t K = cfg_.model.num_classes, B = static_cast<int64_t>(batch.labels.size());
      const float* z = logits.value().data();
      for (int64_t b = 0; b < B; ++b) {
        const float* row = z + b * K;
        hits += static_cast<int64_t>(std::max_element(row, row + K) - row) == batch.labels[static_cast<size_t>(b)];
      }
      seen += static_cast<double>(B);
    }
  });
  if (reducer_) {  // several ranks: the global batch's mean loss, counts and mean gradient
    double v[3] = {loss_sum, hits, seen};
    comm_.allreduce_sum(v, 3);
    loss_sum = v[0] / static_cast<double>(comm_.size());
    hits = v[1];
    seen = v[2];
    reducer_->average();
  }
  epoch_hits_ += hits;
  epoch_seen_ += seen;
  last_loss_ = loss_sum / static_cast<double>(accum);
  sync([&] {
    last_grad_norm_ = clip_grad_norm(params_, cfg_.optim.clip_grad_norm);
    if (!std::isfinite(last_loss_) || !std::isfinite(last_grad_norm_)) {
      const std::string what = !std::isfinite(last_loss_) ? "loss" : "gradient norm";
      if (cfg_.train.nonfinite == NonFinitePolicy::Abort || ++skipped_ > cfg_.train.max_skipped_steps)
        fail(ErrorKind::Diverged, "non-finite ", what, " at step ", step_ + 1,
             cfg_.train.nonfinite == NonFinitePolicy::Skip ? " (too many skipped steps)" : "");
      spdlog::warn("non-finite {} at step {}: update skipped ({} so far)", what, step_ + 1, skipped_);
      optim_->zero_grad();
      ++step_;
      return;
    }
    optim_->step(learning_rate(cfg_.schedule, cfg_.optim.lr, step_));
    optim_->zero_grad();
    epoch_loss_ += last_loss_;
    ++step_;
  });
  step_s_ += std::chrono::duration<double>(Clock::now() - t0).count();
}

EvalResult Trainer::eval_now() {
  EvalResult r;
  optim_->with_eval_weights([&] {
    r = evaluate(*model_, *val_set_, cfg_.data, cfg_.train.batch_size, false, [] { return stop_signal() != 0; },
                 &comm_);
  });
  return r;
}

void Trainer::after_eval(const EvalResult& r) {
  last_top1_ = r.top1;
  lead_io([&] {
    Json fields = {{"step", step_}, {"epoch", (step_ - 1) / steps_per_epoch_ + 1}, {"eval_loss", r.loss},
                   {"eval_top1", r.top1}, {"eval_top5", r.top5}, {"count", r.count}};
    out_.emit("eval", fields);
    files_->metric("eval", fields);
    spdlog::info("eval at step {}: loss {:.4f} top-1 {:.2f}% top-5 {:.2f}%", step_, r.loss, r.top1, r.top5);
  });
  if (r.top1 > best_top1_) {
    best_top1_ = r.top1;
    lead_io([&] { optim_->with_eval_weights([&] { write_best(dir_, snapshot(/*weights_only=*/true)); }); });
  }
}

CheckpointState Trainer::snapshot(bool weights_only) {
  CheckpointState ck;
  for (auto& [name, t] : model_->state_dict(false)) ck.tensors.emplace(kModelPrefix + name, t);
  if (weights_only) {
    ck.train.counters["weights_only"] = 1;
  } else {
    OptimState os;
    optim_->save_state(os);
    for (auto& [name, t] : os.tensors) ck.tensors.emplace(name, t);
    for (auto& [name, v] : os.ints) ck.train.counters[name] = v;
  }
  ck.config_json = to_canonical_json(cfg_);
  ck.classes = train_set_->classes();
  ck.mean = cfg_.data.mean;
  ck.std = cfg_.data.std;
  ck.data_manifest = hex64(data_hash_);
  TrainState& ts = ck.train;
  ts.step = step_;
  ts.epoch = step_ / steps_per_epoch_;
  ts.epoch_position = (step_ % steps_per_epoch_) * cfg_.train.accum_steps * cfg_.train.batch_size;
  ts.batch_size = cfg_.train.batch_size;
  ts.seed = cfg_.train.seed;
  ts.threads = num_threads();
  ts.skipped_steps = skipped_;
  ts.finished = step_ >= total_steps_;
  ts.best_eval_top1 = best_top1_;
  if (last_top1_) ts.sums["last_eval_top1"] = *last_top1_;
  ts.sums["epoch_loss"] = epoch_loss_;
  ts.sums["epoch_hits"] = epoch_hits_;
  ts.sums["epoch_seen"] = epoch_seen_;
  if (comm_.distributed()) ts.counters["dist.world_size"] = comm_.size();
  return ck;
}

void Trainer::save(const char* why) {
  const CommitResult r = commit_checkpoint(dir_, snapshot(false), cfg_.train.keep_checkpoints);
  for (const auto& w : r.warnings) spdlog::warn("{}", w);
  last_checkpoint_ = r.path;
  fin_.checkpoint = last_checkpoint_;
  Json fields = {{"step", step_}, {"file", last_checkpoint_}, {"reason", why}};
  out_.emit("checkpoint", fields);
  files_->metric("checkpoint", fields);
}

void Trainer::lead_io(const std::function<void()>& fn) {
  if (!comm_.lead()) return;
  if (!comm_.distributed()) return fn();
  try {
    fn();
  } catch (...) {
    if (!io_error_) io_error_ = std::current_exception();
  }
}

void Trainer::sync_io() {
  sync([&] {
    if (io_error_) std::rethrow_exception(std::exchange(io_error_, nullptr));
  });
}

// Several ranks: the same config and data everywhere, then rank 0's model, optimizer state and
// loop counters everywhere (it alone read the checkpoint or --init-weights).
void Trainer::replicate_from_lead() {
  const std::string canonical = to_canonical_json(cfg_);
  uint64_t lo[2] = {xxh64(canonical.data(), canonical.size()), data_hash_};
  uint64_t hi[2] = {lo[0], lo[1]};
  comm_.allreduce_min(lo, 2);
  comm_.allreduce_max(hi, 2);
  if (lo[0] != hi[0])
    fail_together(comm_, ErrorKind::Config, "the ranks resolved different configs (same command line and config file on every host?)");
  if (lo[1] != hi[1])
    fail_together(comm_, ErrorKind::Data, "the ranks see different training folders (manifest hashes differ)");
  broadcast_training_state(comm_, *model_, *optim_);
  std::vector<int64_t> ints = {step_, skipped_};
  std::vector<double> sums = {best_top1_, last_top1_ ? 1.0 : 0.0, last_top1_.value_or(0), epoch_loss_, epoch_hits_, epoch_seen_};
  broadcast_values(comm_, ints);
  broadcast_values(comm_, sums);
  step_ = ints[0], skipped_ = ints[1];
  best_top1_ = sums[0];
  last_top1_ = sums[1] > 0 ? std::optional<double>(sums[2]) : std::nullopt;
  epoch_loss_ = sums[3], epoch_hits_ = sums[4], epoch_seen_ = sums[5];
  check_replicas_equal(comm_, params_, step_);
  reducer_ = std::make_unique<GradReducer>(comm_, params_);
  dropout_key_offset_ = static_cast<int64_t>(comm_.rank()) << 40;
}

FinalRecord Trainer::run(int& signal) {
  set_num_threads(cfg_.train.threads);
  if (comm_.distributed()) {
    const ThreadPlan plan = plan_rank_threads(cfg_.train.threads, comm_.local_size(), affinity_cores(), host_cores());
    set_num_threads(plan.threads);
    if (!plan.warning.empty()) spdlog::warn("{}", plan.warning);
  }
  sync([&] {
    if (comm_.lead()) prepare_run_dir();
  });
  broadcast_string(comm_, dir_, 0);
  cfg_.out = dir_;
  if (comm_.distributed())
    spdlog::info("data-parallel over {}: {} ranks ({} on this host), global batch {} = {} per rank",
                 comm_.backend(), comm_.size(), comm_.local_size(), cfg_.train.batch_size,
                 cfg_.train.batch_size / comm_.size());
  spdlog::info("vit-train {} | {} threads | GEMM path {} | config {}", VIT_VERSION, num_threads(), kernels::gemm_simd_path(),
               opt_.config_path);
  sync([&] {
    load_data();
    build_model();
  });
  spdlog::info("model: {} {} params | optimizer {} | {} steps ({} per epoch, batch {} x {} accum)",
               cfg_.model.attention == AttentionKind::Favor ? "Performer" : "ViT", model_->num_parameters(),
               opt_name(cfg_.optim), total_steps_, steps_per_epoch_, cfg_.train.batch_size, cfg_.train.accum_steps);
  sync([&] {
    if (!comm_.lead()) return;
    resume_or_init();
    // Only after the resume checks: a refused resume (other model, other data) must leave the run
    // directory's config.json as it was, or the next `--resume auto` without --config would break.
    write_file_atomic(dir_ + "/config.json", to_json(cfg_) + "\n");
    write_file_atomic(dir_ + "/classes.json", dump_json(Json(train_set_->classes())) + "\n");
  });
  if (comm_.distributed()) replicate_from_lead();
  fin_.steps = step_;
  if (step_ >= total_steps_) {
    spdlog::info("run already complete ({} of {} steps)", step_, total_steps_);
    fin_.status = "already_complete";
    fin_.exit_code = 0;
    fin_.best_eval_top1 = best_top1_ >= 0 ? std::optional<double>(best_top1_) : std::nullopt;
    fin_.final_eval_top1 = last_top1_;
    fin_.checkpoint = last_checkpoint_;
    return fin_;
  }
  const Json start = {{"step", step_}, {"total_steps", total_steps_}, {"params", model_->num_parameters()},
                      {"train_images", train_set_->size()}, {"val_images", val_set_ ? val_set_->size() : 0},
                      {"classes", train_set_->classes().size()}, {"optimizer", opt_name(cfg_.optim)},
                      {"threads", num_threads()}, {"run_dir", dir_}};
  lead_io([&] {
    out_.emit("start", start);
    files_->metric("start", start);
  });

  loader_->seek(step_ / steps_per_epoch_, (step_ % steps_per_epoch_) * cfg_.train.accum_steps);
  Progress progress(total_steps_, cfg_.train.log_every_steps, opt_.quiet || !comm_.lead());
  const int64_t eval_every = cfg_.train.eval_every_steps, ckpt_every = cfg_.train.checkpoint_every_steps;
  const double images_per_step = static_cast<double>(cfg_.train.batch_size * cfg_.train.accum_steps);
  epoch_start_ = Clock::now();
  auto window_start = Clock::now();
  int64_t window_steps = 0;
  fin_.status = "completed";
  fin_.exit_code = 0;
  while (step_ < total_steps_) {
    train_step();
    ++window_steps;
    const double window_s = std::chrono::duration<double>(Clock::now() - window_start).count();
    const double img_s = window_s > 0 ? images_per_step * static_cast<double>(window_steps) / window_s : 0;
    if (window_s > 5) window_start = Clock::now(), window_steps = 0;
    const int64_t epoch = (step_ - 1) / steps_per_epoch_ + 1;
    const double lr = learning_rate(cfg_.schedule, cfg_.optim.lr, step_ - 1);
    progress.update(epoch, step_, last_loss_, lr, img_s);
    if (step_ % cfg_.train.log_every_steps == 0)
      lead_io([&] {
        files_->metric("train", {{"step", step_}, {"epoch", epoch}, {"loss", last_loss_}, {"lr", lr},
                                 {"grad_norm", last_grad_norm_}, {"img_per_s", img_s}});
      });
    const bool epoch_end = step_ % steps_per_epoch_ == 0;
    const bool done = step_ == total_steps_;
    std::optional<EvalResult> ev;
    if (val_set_ && (epoch_end || done || (eval_every > 0 && step_ % eval_every == 0))) {
      progress.finish();
      ev = eval_now();
      if (!ev->interrupted) after_eval(*ev);
    }
    if (epoch_end || done) {
      const double epoch_s = std::chrono::duration<double>(Clock::now() - epoch_start_).count();
      const int64_t steps_in_epoch = (step_ - 1) % steps_per_epoch_ + 1;
      RunFiles::EpochRow row{epoch, epoch_loss_ / static_cast<double>(steps_in_epoch),
                             epoch_seen_ > 0 ? 100.0 * epoch_hits_ / epoch_seen_ : 0.0,
                             ev && !ev->interrupted ? std::optional<double>(ev->loss) : std::nullopt,
                             ev && !ev->interrupted ? std::optional<double>(ev->top1) : std::nullopt,
                             ev && !ev->interrupted ? std::optional<double>(ev->top5) : std::nullopt,
                             lr, epoch_seen_ / std::max(epoch_s, 1e-9), epoch_s};
      lead_io([&] {
        files_->summary(row);
        out_.emit("epoch", {{"step", step_}, {"epoch", epoch}, {"train_loss", row.train_loss},
                            {"train_top1", row.train_top1}, {"eval_top1", row.eval_top1 ? Json(*row.eval_top1) : Json()}});
      });
      epoch_loss_ = epoch_hits_ = epoch_seen_ = 0;
      epoch_start_ = Clock::now();
    }
    bool timed_out = cfg_.train.max_wall_time_s > 0 && elapsed_s() >= cfg_.train.max_wall_time_s;
    int sig = stop_signal();
    if (comm_.distributed()) {  // all ranks stop at the same step: any rank's signal or time limit
      sync_io();
      int64_t vote[2] = {sig, timed_out ? 1 : 0};
      comm_.allreduce_max(vote, 2);
      sig = static_cast<int>(vote[0]);
      timed_out = vote[1] != 0;
    }
    if (epoch_end || done || sig || timed_out || (ckpt_every > 0 && step_ % ckpt_every == 0)) {
      progress.finish();
      check_replicas_equal(comm_, params_, step_);  // never save diverged replicas
      lead_io([&] { save(done ? "final" : sig ? "signal" : timed_out ? "time_limit" : "periodic"); });
      sync_io();
    } else if (comm_.distributed() && step_ % 100 == 0) {
      check_replicas_equal(comm_, params_, step_);
    }
    if (sig) {
      spdlog::warn("stopped by signal {} at step {}; resume with --resume auto", sig, step_);
      fin_.status = "interrupted";
      fin_.exit_code = 128 + sig;
      signal = sig;
      break;
    }
    if (timed_out && !done) {
      spdlog::warn("--max-wall-time reached at step {}; checkpoint saved, resume with --resume auto", step_);
      fin_.status = "time_limit";
      fin_.exit_code = static_cast<int>(ErrorKind::TimeLimit);
      break;
    }
  }
  progress.finish();
  if (reducer_ && step_s_ > 0) {
    fin_.extra["ranks"] = comm_.size();
    fin_.extra["allreduce_s"] = reducer_->comm_seconds();
    fin_.extra["train_step_s"] = step_s_;
    spdlog::info("data-parallel: gradient allreduce {:.3f} s of {:.3f} s in training steps ({:.1f}%)",
                 reducer_->comm_seconds(), step_s_, 100.0 * reducer_->comm_seconds() / step_s_);
  }
  fin_.steps = step_;
  fin_.best_eval_top1 = best_top1_ >= 0 ? std::optional<double>(best_top1_) : std::nullopt;
  fin_.final_eval_top1 = last_top1_;
  return fin_;
}

}  // namespace

FinalRecord run_training(Config config, const TrainOptions& options, JsonLines& out, int& signal) {
  return run_training(std::move(config), options, out, signal, local_comm());
}

FinalRecord run_training(Config config, const TrainOptions& options, JsonLines& out, int& signal, Communicator& comm) {
  Trainer trainer(std::move(config), options, out, comm);
  return trainer.run(signal);
}

}  // namespace vit
