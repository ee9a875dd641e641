#include "train/evaluator.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include "data/loader.hpp"
#include "dist/agree.hpp"

namespace vit {

EvalResult evaluate(ViT& model, const ImageDataset& data, const DataSettings& settings, int64_t batch_size,
                    bool keep_predictions, const std::function<bool()>& stop, Communicator* comm) {
  Communicator& group = comm ? *comm : local_comm();
  const int64_t K = model.config().num_classes;
  EvalResult r;
  r.confusion.assign(static_cast<size_t>(K * K), 0);
  std::vector<int64_t> class_total(static_cast<size_t>(K), 0), class_hit(static_cast<size_t>(K), 0);
  const bool was_training = model.is_training();
  model.eval();
  NoGradGuard no_grad;
  double loss_sum = 0;
  int64_t hit1 = 0, hit5 = 0;
  agree(group, [&] {  // local work only: a failure on one rank must not strand the others below
  DataLoader loader(data, settings,
                    LoaderOptions{batch_size, /*train=*/false, /*seed=*/0, group.rank(), group.size()});
  for (int64_t bi = 0; bi < loader.batches_per_epoch(); ++bi) {
    if (stop && stop()) {
      r.interrupted = true;
      break;
    }
    Batch batch = loader.next();
    const int64_t B = static_cast<int64_t>(batch.labels.size());
    if (B == 0) continue;  // a short last batch has no sample for this rank
    Var logits = model.forward(batch.images, 0);
    const float* z = logits.value().data();
    for (int64_t b = 0; b < B; ++b) {
      const float* row = z + b * K;
      const int32_t y = batch.labels[static_cast<size_t>(b)];
      // log-softmax in double for the loss and the confidence
      const double mx = *std::max_element(row, row + K);
      double se = 0;
      for (int64_t k = 0; k < K; ++k) se += std::exp(static_cast<double>(row[k]) - mx);
      loss_sum += -(static_cast<double>(row[y]) - mx - std::log(se));
      const int32_t pred = static_cast<int32_t>(std::max_element(row, row + K) - row);
      int64_t rank = 0;  // classes scoring strictly higher than the true one
      for (int64_t k = 0; k < K; ++k) rank += row[k] > row[y];
      hit1 += pred == y;
      hit5 += rank < 5;
      class_total[static_cast<size_t>(y)]++;
      class_hit[static_cast<size_t>(y)] += pred == y;
      r.confusion[static_cast<size_t>(y * K + pred)]++;
      if (keep_predictions)
        r.predictions.push_back({batch.samples[static_cast<size_t>(b)], y, pred,
                                 static_cast<float>(std::exp(static_cast<double>(row[pred]) - mx) / se)});
    }
    r.count += B;
  }
  });
  if (group.distributed()) {  // sums of counts in double: exact below 2^53
    std::vector<double> v = {loss_sum, static_cast<double>(r.count), static_cast<double>(hit1),
                             static_cast<double>(hit5), r.interrupted ? 1.0 : 0.0};
    for (auto* vec : {&class_total, &class_hit, &r.confusion})
      for (int64_t x : *vec) v.push_back(static_cast<double>(x));
    group.allreduce_sum(v.data(), static_cast<int64_t>(v.size()));
    loss_sum = v[0];
    r.count = static_cast<int64_t>(v[1]);
    hit1 = static_cast<int64_t>(v[2]);
    hit5 = static_cast<int64_t>(v[3]);
    r.interrupted = v[4] > 0;
    size_t i = 5;
    for (auto* vec : {&class_total, &class_hit, &r.confusion})
      for (int64_t& x : *vec) x = static_cast<int64_t>(v[i++]);
  }
  model.train(was_training);
  if (r.count > 0) {
    r.loss = loss_sum / static_cast<double>(r.count);
    r.top1 = 100.0 * static_cast<double>(hit1) / static_cast<double>(r.count);
    r.top5 = 100.0 * static_cast<double>(hit5) / static_cast<double>(r.count);
  }
  for (int64_t k = 0; k < K; ++k)
    r.per_class_top1.push_back(class_total[static_cast<size_t>(k)]
                                   ? 100.0 * static_cast<double>(class_hit[static_cast<size_t>(k)]) /
                                         static_cast<double>(class_total[static_cast<size_t>(k)])
                                   : std::numeric_limits<double>::quiet_NaN());
  return r;
}

}  // namespace vit
