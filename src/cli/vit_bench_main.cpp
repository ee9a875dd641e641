// vit-bench: throughput of the reference workloads (../shared/bench/WORKLOADS.md: W1-W3 models,
// W4 GEMM shapes) on synthetic data, one JSON object per configuration on stdout. Warm-up, then
// the median of several timed windows; GFLOP/s from the analytic count of the GEMMs we execute
// (train = 3x forward), stated against an AVX2 FMA peak probe, besides torch_ref.py's
// forward_flops() count of the whole model (model_fwd_mflop_per_img).
// VIT_PROFILE=1 adds a per-op time breakdown line after each result (autograd/ops_profile.hpp).
// Not here: data loading, checkpoints, accuracy (vit-train / vit-eval do those).
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "autograd/ops_profile.hpp"
#include "autograd/variable.hpp"
#include "core/error.hpp"
#include "core/parallel.hpp"
#include "core/rng.hpp"
#include "kernels/gemm.hpp"
#include "nn/vit.hpp"
#include "optim/make_optimizer.hpp"

using namespace vit;
using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

struct Opts {
  std::vector<std::string> workloads{"w1"};
  std::vector<std::string> attns{"softmax"};
  std::vector<std::string> opts{"adamw"};
  std::string what = "both";
  std::vector<int64_t> image_sizes;  // W3; empty: 32, 64, 128, 256
  int threads = 2;
  int windows = 7;
  double window_seconds = 2.0;
  int warmup = 3;
  double max_seconds = 0;  // if the windows would take longer, one step per window
  bool probe = true;
  bool profile = false;
};

double peak_rss_mib() {
  struct rusage ru {};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_maxrss) / 1024.0;
}

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// ---------------------------------------------------------------- FMA peak probe
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
// 10 independent accumulators (enough to cover FMA latency x 2 pipes); 2 x 8 x 10 flops per
// iteration. Returns the flops done.
__attribute__((target("avx2,fma"))) double fma_loop(int64_t iters, float* sink) {
  __m256 a0 = _mm256_set1_ps(1.0f), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0,
         a7 = a0, a8 = a0, a9 = a0;
  const __m256 m = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-7f);
  for (int64_t i = 0; i < iters; ++i) {
    a0 = _mm256_fmadd_ps(a0, m, c); a1 = _mm256_fmadd_ps(a1, m, c);
    a2 = _mm256_fmadd_ps(a2, m, c); a3 = _mm256_fmadd_ps(a3, m, c);
    a4 = _mm256_fmadd_ps(a4, m, c); a5 = _mm256_fmadd_ps(a5, m, c);
    a6 = _mm256_fmadd_ps(a6, m, c); a7 = _mm256_fmadd_ps(a7, m, c);
    a8 = _mm256_fmadd_ps(a8, m, c); a9 = _mm256_fmadd_ps(a9, m, c);
  }
  __m256 s = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)),
                           _mm256_add_ps(_mm256_add_ps(a4, a5), _mm256_add_ps(a6, a7)));
  s = _mm256_add_ps(s, _mm256_add_ps(a8, a9));
  float out[8];
  _mm256_storeu_ps(out, s);
  *sink = out[0];
  return static_cast<double>(iters) * 10 * 8 * 2;
}
bool have_fma() { return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"); }
#else
double fma_loop(int64_t, float*) { return 0; }
bool have_fma() { return false; }
#endif

// GFLOP/s of the probe with `threads` threads running it at once (best of 5 short runs).
double fma_peak(int threads) {
  if (!have_fma()) return 0;
  const int64_t iters = 20'000'000;
  double best = 0;
  for (int rep = 0; rep < 5; ++rep) {
    std::vector<float> sink(static_cast<size_t>(threads) * 16);
    double flops = 0;
    const auto t0 = Clock::now();
#ifdef _OPENMP
#pragma omp parallel num_threads(threads)
    {
      const double f = fma_loop(iters, &sink[static_cast<size_t>(omp_get_thread_num()) * 16]);
#pragma omp master
      flops = f * threads;
    }
#else
    flops = fma_loop(iters, &sink[0]);
#endif
    best = std::max(best, flops / seconds_since(t0) / 1e9);
  }
  return best;
}

// ---------------------------------------------------------------- workloads
struct Workload {
  std::string name;
  ModelConfig model;
  int64_t batch = 0;
  int64_t features = 64;  // performer m
};

Workload make_workload(const std::string& name, const std::string& attn, int64_t image_size) {
  Workload w;
  w.name = name;
  ModelConfig& m = w.model;
  m.patch_size = 4;
  m.num_classes = 10;
  m.ln_eps = 1e-5f;
  if (name == "w1") {
    m.image_size = 28; m.channels = 1; m.dim = 64; m.depth = 6; m.heads = 4; m.mlp_ratio = 2.0;
    w.batch = 128;
  } else if (name == "w2") {
    m.image_size = 32; m.channels = 3; m.dim = 192; m.depth = 6; m.heads = 3; m.mlp_ratio = 4.0;
    w.batch = 64;
  } else if (name == "w3") {
    m.image_size = image_size; m.channels = 3; m.dim = 64; m.depth = 2; m.heads = 4;
    m.mlp_ratio = 2.0;
    w.batch = 8;
  } else {
    fail(ErrorKind::Usage, "unknown workload '", name, "' (w1, w2, w3, w4)");
  }
  if (attn == "performer") {
    m.attention = AttentionKind::Favor;
    m.favor.features = w.features;
    m.favor.redraw_interval = 0;  // no redraw during the benchmark
  } else if (attn != "softmax") {
    fail(ErrorKind::Usage, "unknown --attn '", attn, "' (softmax, performer)");
  }
  return w;
}

// torch_ref.py forward_flops(): multiply-adds of the GEMMs of one image's forward pass. With
// `executed`, as this build runs it: a class-pooled model's last block computes the class
// token's row only after its qkv projection (nn/vit.cpp), so its proj, MLP and query side of the
// attention count one row.
double forward_flops(const Workload& w, bool executed) {
  const ModelConfig& a = w.model;
  const double n = static_cast<double>(a.num_patches()), t = n + 1, d = static_cast<double>(a.dim);
  const double h = static_cast<double>(a.heads), dh = d / h, m = static_cast<double>(w.features);
  const double mlp = static_cast<double>(a.mlp_hidden());
  const bool softmax = a.attention == AttentionKind::Softmax;
  // q rows (queries) against t keys; the key side of FAVOR+ (k' projection, K'^T V) is per key
  auto block = [&](double queries) {
    double f = 2 * t * d * 3 * d + 2 * queries * d * d + 2 * queries * d * mlp * 2;
    if (softmax) return f + h * (2 * queries * t * dh * 2);
    return f + h * (2 * t * dh * m + 2 * t * m * dh) +
           h * (2 * queries * dh * m + 2 * queries * m * dh + 2 * queries * m);
  };
  const double last = executed && a.pool == Pooling::Cls ? 1 : t;
  return 2 * n * static_cast<double>(a.channels * a.patch_size * a.patch_size) * d +
         static_cast<double>(a.depth - 1) * block(t) + block(last) +
         2 * d * static_cast<double>(a.num_classes);
}

struct Timing {
  std::vector<double> rates;  // images (or calls) per second, one per window
  int64_t steps_per_window = 0;
};

Timing time_windows(const std::function<void()>& step, double items_per_step, const Opts& o) {
  const auto t0 = Clock::now();
  for (int i = 0; i < o.warmup; ++i) step();
  const double per = seconds_since(t0) / std::max(o.warmup, 1);
  Timing t;
  t.steps_per_window = std::max<int64_t>(1, static_cast<int64_t>(o.window_seconds / std::max(per, 1e-9) + 0.5));
  if (o.max_seconds > 0 && per * static_cast<double>(t.steps_per_window) * o.windows > o.max_seconds)
    t.steps_per_window = 1;
  for (int wi = 0; wi < o.windows; ++wi) {
    const auto tw = Clock::now();
    for (int64_t s = 0; s < t.steps_per_window; ++s) step();
    t.rates.push_back(static_cast<double>(t.steps_per_window) * items_per_step / seconds_since(tw));
  }
  return t;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

double round2(double x) { return static_cast<double>(static_cast<int64_t>(x * 100 + (x < 0 ? -0.5 : 0.5))) / 100; }

json summarize(const Timing& t, double batch) {
  const double med = median(t.rates);
  return json{{"img_s", round2(med)},
              {"img_s_min", round2(*std::min_element(t.rates.begin(), t.rates.end()))},
              {"img_s_max", round2(*std::max_element(t.rates.begin(), t.rates.end()))},
              {"ms_per_step", round2(1000 * batch / med)},
              {"windows", t.rates.size()},
              {"steps_per_window", t.steps_per_window}};
}

void emit(const json& j) {
  std::cout << j.dump() << std::endl;
}

void run_model(const Workload& w, const std::string& attn, const std::string& opt_name_arg,
               const Opts& o, double peak) {
  validate(w.model);
  ViT model(w.model, 0);
  OptimSettings os;
  apply_opt_name(os, opt_name_arg);
  os.lr = 1e-3f;
  os.weight_decay = os.kind == OptimizerKind::AdamW ? 0.05f : 0.0f;
  std::unique_ptr<Optimizer> opt = make_optimizer(os, model.parameters());

  const ModelConfig& m = w.model;
  Tensor images = Tensor::empty({w.batch, m.channels, m.image_size, m.image_size});
  std::vector<int32_t> labels(static_cast<size_t>(w.batch));
  Rng rng(0, RngPurpose::Test, 7, 0);
  for (int64_t i = 0; i < images.numel(); ++i) images.data()[i] = (rng.uniform() - 0.5f) / 0.25f;
  for (auto& l : labels) l = static_cast<int32_t>(rng.below(static_cast<uint64_t>(m.num_classes)));

  const double fl = forward_flops(w, true);
  json base{{"workload", w.name}, {"attn", attn}, {"opt", opt_name(os)}, {"batch", w.batch},
            {"tokens", m.num_patches() + 1}, {"image_size", m.image_size}, {"threads", num_threads()},
            {"simd", kernels::gemm_simd_path()}, {"fwd_mflop_per_img", round2(fl / 1e6)},
            {"model_fwd_mflop_per_img", round2(forward_flops(w, false) / 1e6)},
            {"params", model.num_parameters()}, {"rss_after_setup_mib", round2(peak_rss_mib())}};

  int64_t step = 0;
  double optimizer_s = 0;  // only accumulated while profiling
  auto train_step = [&] {
    model.train();
    op_profile_mark();
    Var logits = model.forward(images, step++);
    Var loss = ViT::loss(logits, labels, 0.0f);
    backward(loss);
    const auto t0 = Clock::now();
    opt->step(1e-3f);
    opt->zero_grad();
    optimizer_s += seconds_since(t0);
  };
  auto eval_step = [&] {
    model.eval();
    NoGradGuard ng;
    op_profile_mark();
    Var logits = model.forward(images, 0);
    (void)logits;
  };
  // VIT_PROFILE=1: a few more steps with per-op timers, as one JSON line (ms per step).
  auto profile = [&](const std::function<void()>& fn, const char* what) {
    constexpr int kSteps = 3;
    op_profile_take();
    optimizer_s = 0;
    for (int i = 0; i < kSteps; ++i) fn();
    json ops = json::object();
    double total = 0;
    for (const OpProfileRow& r : op_profile_take()) {
      ops[r.name] = {{"forward_ms", round2(1000 * r.forward_s / kSteps)},
                     {"backward_ms", round2(1000 * r.backward_s / kSteps)},
                     {"calls", r.calls / kSteps}};
      total += r.forward_s + r.backward_s;
    }
    json j{{"name", "profile"}, {"what", what}, {"workload", w.name}, {"attn", attn},
           {"ops_ms_per_step", round2(1000 * total / kSteps)}, {"ops", ops}};
    if (std::string(what) == "train") j["optimizer_ms"] = round2(1000 * optimizer_s / kSteps);
    emit(j);
  };
  const double b = static_cast<double>(w.batch);
  for (const char* what : {"train", "eval"}) {
    if (o.what != "both" && o.what != what) continue;
    const bool train = std::string(what) == "train";
    json r = base;
    r["name"] = what;
    try {
      r.update(summarize(time_windows(train ? std::function<void()>(train_step) : eval_step, b, o), b));
      const double gf = r["img_s"].get<double>() * (train ? 3 : 1) * fl / 1e9;
      r["gflop_s"] = round2(gf);
      if (peak > 0) r["peak_fraction"] = round2(gf / peak);
    } catch (const std::bad_alloc&) {
      clear_tape();
      r["error"] = "out of memory";
    }
    r["peak_rss_mib"] = round2(peak_rss_mib());
    emit(r);
    if (op_profile_enabled() && !r.contains("error"))
      profile(train ? std::function<void()>(train_step) : eval_step, what);
  }
}

// W4: the square GEMMs and W1's layer shapes.
void run_gemms(const Opts& o, double peak) {
  struct Shape3 { const char* name; bool ta; int64_t M, N, K; };
  const Shape3 shapes[] = {{"sq256", false, 256, 256, 256},       {"sq512", false, 512, 512, 512},
                           {"sq1024", false, 1024, 1024, 1024},   {"sq2048", false, 2048, 2048, 2048},
                           {"w1_qkv", false, 6400, 192, 64},      {"w1_proj", false, 6400, 64, 64},
                           {"w1_fc1", false, 6400, 128, 64},      {"w1_fc2", false, 6400, 64, 128},
                           {"w1_wgrad", true, 64, 192, 6400}};
  for (const auto& s : shapes) {
    std::vector<float> A(static_cast<size_t>(s.M * s.K)), B(static_cast<size_t>(s.K * s.N)),
        C(static_cast<size_t>(s.M * s.N));
    Rng rng(0, RngPurpose::Test, 9, 0);
    for (auto& v : A) v = rng.uniform() - 0.5f;
    for (auto& v : B) v = rng.uniform() - 0.5f;
    // trans_a: A stored [K, M]
    auto call = [&] {
      kernels::gemm(s.ta, false, s.M, s.N, s.K, 1.0f, A.data(), s.ta ? s.M : s.K, B.data(), s.N,
                    0.0f, C.data(), s.N);
    };
    const Timing t = time_windows(call, 1.0, o);
    const double calls = median(t.rates);
    const double gf = calls * 2.0 * static_cast<double>(s.M * s.N * s.K) / 1e9;
    json r{{"workload", "w4"}, {"name", s.name}, {"M", s.M}, {"N", s.N}, {"K", s.K},
           {"trans_a", s.ta}, {"threads", num_threads()}, {"simd", kernels::gemm_simd_path()},
           {"ms_per_call", round2(1000 / calls)}, {"gflop_s", round2(gf)}};
    if (peak > 0) r["peak_fraction"] = round2(gf / peak);
    emit(r);
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"vit-bench: throughput of the reference workloads on synthetic data (JSON on stdout)"};
  app.set_version_flag("--version", std::string("vit-bench ") + VIT_VERSION);
  Opts o;
  app.add_option("--workload", o.workloads, "w1, w2, w3, w4 (GEMM shapes); repeat or comma list")
      ->delimiter(',');
  app.add_option("--attn", o.attns, "softmax, performer (m=64); comma list")->delimiter(',');
  app.add_option("--opt", o.opts, "adamw, adam, sgd, radam, lookahead_radam, ...; comma list")
      ->delimiter(',');
  app.add_option("--what", o.what, "train, eval or both")->check(CLI::IsMember({"train", "eval", "both"}));
  app.add_option("--image-size", o.image_sizes, "W3 image sizes (default 32,64,128,256)")->delimiter(',');
  app.add_option("--threads", o.threads, "OpenMP threads");
  app.add_option("--windows", o.windows, "timed windows")->check(CLI::PositiveNumber);
  app.add_option("--window-seconds", o.window_seconds, "target seconds per window");
  app.add_option("--warmup", o.warmup, "warm-up steps");
  app.add_option("--max-seconds", o.max_seconds, "if the windows would exceed this, 1 step per window");
  // Scalars may be repeated; the last wins (scripts append per-case overrides to common flags).
  for (const char* name : {"--what", "--threads", "--windows", "--window-seconds", "--warmup", "--max-seconds"})
    app.get_option(name)->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  bool no_probe = false;
  app.add_flag("--no-probe", no_probe, "skip the FMA peak probe");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  o.probe = !no_probe;
  try {
    set_num_threads(o.threads);
    double peak = 0;
    if (o.probe && have_fma()) {
      const double p1 = fma_peak(1), pn = fma_peak(num_threads());
      peak = pn;
      emit(json{{"name", "fma_probe"}, {"gflop_s_1_thread", round2(p1)}, {"threads", num_threads()},
                {"gflop_s", round2(pn)}});
    }
    for (const auto& wl : o.workloads) {
      if (wl == "w4") {
        run_gemms(o, peak);
        continue;
      }
      std::vector<int64_t> sizes{0};
      if (wl == "w3") sizes = o.image_sizes.empty() ? std::vector<int64_t>{32, 64, 128, 256} : o.image_sizes;
      for (int64_t s : sizes)
        for (const auto& attn : o.attns)
          for (const auto& opt : o.opts) run_model(make_workload(wl, attn, s), attn, opt, o, peak);
    }
  } catch (const std::exception& e) {
    std::cerr << "vit-bench: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
