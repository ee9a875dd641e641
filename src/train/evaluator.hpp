// Scoring a model on an image dataset: loss (plain cross-entropy, no smoothing), top-1, top-5,
// per-class accuracy, confusion matrix and optional per-image predictions. Forward only, no tape,
// the model in eval mode (restored afterwards). Used by the trainer and by vit-eval.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "data/dataset.hpp"
#include "nn/vit.hpp"

namespace vit {

class Communicator;

struct Prediction {
  int64_t sample;      // dataset index
  int32_t label, predicted;
  float confidence;    // softmax probability of `predicted`
};

struct EvalResult {
  int64_t count = 0;
  double loss = 0, top1 = 0, top5 = 0;          // top-k in percent
  std::vector<double> per_class_top1;           // [K], percent (NaN for a class with no samples)
  std::vector<int64_t> confusion;               // [K, K] row = true class, column = predicted
  std::vector<Prediction> predictions;          // filled when asked
  bool interrupted = false;                     // stop() returned true before the end
};

// `stop` is polled between batches (SIGINT/SIGTERM during eval); may be empty.
// comm (data-parallel training): each rank scores its share of every batch (shard_positions)
// and the sums, counts and confusion matrix are reduced, so every rank returns the result for
// the whole set (the loss up to double rounding; `interrupted` when any rank was stopped);
// predictions stay the rank's own. Collective: call on every rank. nullptr: one process.
EvalResult evaluate(ViT& model, const ImageDataset& data, const DataSettings& settings, int64_t batch_size,
                    bool keep_predictions, const std::function<bool()>& stop = {}, Communicator* comm = nullptr);

}  // namespace vit
