// vit-train: train a ViT or Performer from a JSON config plus overrides (PRODUCT.md).
// Precedence: defaults < --config < named flags < --set (in order).
// Under an MPI launcher (mpirun -np R vit-train ...) every rank runs this main: rank 0 alone
// prints stdout JSON and info logs, the others log warnings prefixed [rank r] (dist/).
#include <cstdio>
#include <memory>
#include <optional>

#include <spdlog/spdlog.h>

#include "cli/cli_common.hpp"
#include "dist/agree.hpp"
#include "optim/make_optimizer.hpp"
#include "train/config.hpp"
#include "train/trainer.hpp"

using namespace vit;

int main(int argc, char** argv) {
  CLI::App app{"vit-train: train a Vision Transformer or Performer on an image folder (CPU)"};
  app.set_version_flag("--version", std::string("vit-train ") + VIT_VERSION);
  std::string config_path, opt, data, val_data, out, resume, init_weights;
  std::optional<double> lr, lookahead_alpha, max_wall_time;
  std::optional<int64_t> epochs, steps, batch_size, seed, threads, lookahead_k;
  std::vector<std::string> sets;
  bool quiet = false;

  app.add_option("-c,--config", config_path, "JSON config file (see configs/)");
  auto* g = app.add_option_group("Overrides", "named flags, applied after the config file");
  g->add_option("--opt", opt, "optimizer chain: sgd|adam|adamw|radam, optional lookahead_ prefix");
  g->add_option("--lr", lr, "base learning rate");
  // Flag values out of Lookahead's bounds (timm's: k >= 1, 0 <= alpha <= 1) are usage errors (64).
  g->add_option("--lookahead-k", lookahead_k, "Lookahead: inner steps per sync (enables Lookahead)")
      ->check(cli::at_least_one());
  g->add_option("--lookahead-alpha", lookahead_alpha, "Lookahead: slow-weight step (enables Lookahead)")
      ->check(cli::unit_interval());
  g->add_option("--epochs", epochs, "number of epochs");
  g->add_option("--steps", steps, "optimizer-step budget (instead of epochs)");
  g->add_option("--batch-size", batch_size, "batch size");
  g->add_option("--seed", seed, "random seed");
  g->add_option("--threads", threads, "OpenMP threads (0: all cores)");
  g->add_option("--data", data, "training image folder (data.train)");
  g->add_option("--val-data", val_data, "validation image folder (data.val)");
  g->add_option("--max-wall-time", max_wall_time, "seconds; then save a checkpoint and exit 75");
  g->add_option("--set", sets, "override any config key: --set model.dim=128 (repeatable, JSON value)");
  auto* r = app.add_option_group("Run", "output and resume");
  r->add_option("-o,--out", out, "run directory (default runs/<date>-<time>-<arch>)");
  r->add_option("--resume", resume, "auto (newest valid checkpoint in --out) or a checkpoint file");
  r->add_option("--init-weights", init_weights, "start from timm-named weights (.safetensors)");
  r->add_flag("-q,--quiet", quiet, "only warnings and errors on stderr");

  std::unique_ptr<Communicator> comm;  // outlives run_main: MPI_Finalize after the final record
  const int code = cli::run_main(app, argc, argv, [&](int& signal) {
    cli::setup_logging(quiet);
    comm = make_communicator(&argc, &argv);
    if (comm->distributed() && !comm->lead()) {
      if (!std::freopen("/dev/null", "w", stdout)) fail(ErrorKind::OsError, "cannot redirect stdout of rank ", comm->rank());
      spdlog::set_pattern(fmt::format("%^[%H:%M:%S %L]%$ [rank {}] %v", comm->rank()));
      spdlog::set_level(spdlog::level::warn);
    }
    Config config;
    agree(*comm, [&] {  // a bad config on one rank stops all of them, with the same code
    if (config_path.empty()) {
      // Resuming a run needs no --config: the run directory holds the resolved one.
      if (!resume.empty() && !out.empty()) config_path = out + "/config.json";
      else fail(ErrorKind::Usage, "--config FILE is required (see configs/quickstart.json)");
    }
    config = parse_config_file(config_path);
    auto set = [&](const std::string& key, const std::string& json_value) {
      apply_override(config, key + "=" + json_value);
    };
    // Text that config.json will record: valid UTF-8 or refused (never silently changed).
    auto text = [](const char* flag, const std::string& s) -> const std::string& {
      if (!valid_utf8(s)) fail(ErrorKind::Usage, flag, " '", s, "': not valid UTF-8 text");
      return s;
    };
    auto quote = [&](const char* flag, const std::string& s) { return dump_json(Json(text(flag, s))); };
    auto num = [](double v) { return dump_json(Json(v)); };
    if (!opt.empty()) {  // --opt NAME picks the whole chain: no lookahead_ prefix, no Lookahead
      OptimSettings check;
      apply_opt_name(check, opt);  // an unknown name is a usage error (64), listing the valid ones
      if (opt.rfind("lookahead_", 0) != 0) set("optim.lookahead", "null");
      set("optim.name", quote("--opt", opt));
    }
    if (lr) set("optim.lr", num(*lr));
    if (lookahead_k) set("optim.lookahead.k", std::to_string(*lookahead_k));
    if (lookahead_alpha) set("optim.lookahead.alpha", num(*lookahead_alpha));
    if (epochs) set("train.epochs", std::to_string(*epochs));
    if (steps) set("train.steps", std::to_string(*steps));
    if (batch_size) set("train.batch_size", std::to_string(*batch_size));
    if (seed) set("train.seed", std::to_string(*seed));
    if (threads) set("train.threads", std::to_string(*threads));
    if (!data.empty()) set("data.train", quote("--data", data));
    if (!val_data.empty()) set("data.val", quote("--val-data", val_data));
    if (max_wall_time) set("train.max_wall_time_s", num(*max_wall_time));
    for (const std::string& s : sets) apply_override(config, s);
    if (!out.empty()) config.out = text("--out", out);
    validate(config);
    });
    JsonLines stdout_lines(stdout);
    if (!comm->distributed())
      return run_training(config, TrainOptions{resume, init_weights, quiet, config_path}, stdout_lines, signal);
    try {
      FinalRecord fin = run_training(config, TrainOptions{resume, init_weights, quiet, config_path}, stdout_lines,
                                     signal, *comm);
      signal = 0;  // exit 128+sig after MPI_Finalize instead of dying by the signal
      return fin;
    } catch (const CollectiveError&) {
      throw;  // every rank has it: run_main reports it, then all finalize
    } catch (...) {
      // This rank alone failed while the others may wait in a collective: report, then end the job.
      std::string message;
      FinalRecord fin;
      fin.exit_code = exception_code(std::current_exception(), message);
      fin.error = Error(static_cast<ErrorKind>(fin.exit_code), message);
      std::fprintf(stderr, "error: [rank %d] %s\n", comm->rank(), message.c_str());
      if (comm->lead()) stdout_lines.emit("final", final_record_json(fin));
      std::fflush(nullptr);
      comm->abort(fin.exit_code);
      throw;  // not reached
    }
  });
  comm.reset();
  return code;
}
