// Data pipeline throughput: the decode-once pass (scan + decode + cache, images/s) over the full
// Fashion-MNIST train folder when scripts/get-fashion-mnist.sh has made it, else the bundled
// sample; and steady-state assembly of one 128 x 1 x 28 x 28 batch from the cache, plain and
// with augmentation. VIT_BENCH_DATA=<folder> overrides the folder.
#include <benchmark/benchmark.h>
#include <spdlog/spdlog.h>

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>

#include "data/dataset.hpp"
#include "data/loader.hpp"

namespace {

std::string data_root() {
  if (const char* env = std::getenv("VIT_BENCH_DATA")) return env;
  const auto repo = std::filesystem::path(__FILE__).parent_path().parent_path();
  const auto full = repo / "data/fashion-mnist/train";
  if (std::filesystem::is_directory(full)) return full.string();
  return (repo / "data/fashion-mnist-small/train").string();
}

vit::DataSettings fmnist_settings() {
  vit::DataSettings s;
  s.image_size = 28;
  s.channels = 1;
  s.mean = {0.2860f};
  s.std = {0.3530f};
  return s;
}

void BM_DecodeAndCache(benchmark::State& state) {
  spdlog::set_level(spdlog::level::warn);
  const std::string root = data_root();
  const auto settings = fmnist_settings();
  int64_t images = 0;
  for (auto _ : state) {
    vit::ImageDataset ds(vit::scan_image_folder(root), settings);
    images += ds.size();
    benchmark::DoNotOptimize(ds.cache_bytes());
  }
  state.SetItemsProcessed(images);
  state.SetLabel(root);
}
BENCHMARK(BM_DecodeAndCache)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_BatchAssembly(benchmark::State& state) {
  spdlog::set_level(spdlog::level::warn);
  static const auto ds = std::make_unique<vit::ImageDataset>(vit::scan_image_folder(data_root()), fmnist_settings());
  auto settings = fmnist_settings();
  if (state.range(0)) {
    settings.augment.hflip = true;
    settings.augment.crop_padding = 4;
  }
  vit::DataLoader loader(*ds, settings, {128, true, 0});
  int64_t i = 0;
  for (auto _ : state) {
    vit::Batch b = loader.make_batch(0, i++ % loader.batches_per_epoch());
    benchmark::DoNotOptimize(b.images.data());
  }
  state.SetItemsProcessed(state.iterations() * 128);
  state.SetLabel(state.range(0) ? "hflip+crop4" : "plain");
}
BENCHMARK(BM_BatchAssembly)->Arg(0)->Arg(1)->Unit(benchmark::kMicrosecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
