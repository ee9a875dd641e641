// The training run: data -> model -> loss -> backward -> optimizer chain, with evaluation,
// checkpoints (atomic, retained, exact resume), metrics and graceful stops. Owns everything a run
// needs; the vit-train main only parses the command line and maps the outcome to an exit code.
#pragma once
#include <string>

#include "train/config.hpp"
#include "train/report.hpp"

namespace vit {

struct TrainOptions {
  std::string resume;        // "" none, "auto" newest valid checkpoint in the run dir, else a file
  std::string init_weights;  // safetensors with timm-named model weights (fine-tuning start)
  bool quiet = false;
  std::string config_path;   // for the log only
};

// Runs to completion, a time limit, a stop signal or an error. Errors of the run itself (bad data,
// divergence, disk full) come back as the final record (never thrown past here, except for
// usage/config errors found before the run directory exists). `signal` is set to the signal
// number when a SIGINT/SIGTERM stopped the run (after a checkpoint was committed).
FinalRecord run_training(Config config, const TrainOptions& options, JsonLines& out, int& signal);

// Data-parallel: every rank of `comm` calls this with the same config (see dist/). Rank 0
// writes the run directory and stdout; errors are agreed, so all ranks throw the same
// CollectiveError (dist/agree.hpp); an error that escapes as anything else happened on one
// rank only, while the others may wait in a collective: the caller must abort the job.
class Communicator;
FinalRecord run_training(Config config, const TrainOptions& options, JsonLines& out, int& signal, Communicator& comm);

}  // namespace vit
