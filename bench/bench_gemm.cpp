// Our GEMM against OpenBLAS cblas_sgemm on the same shapes, registered interleaved (ours, then
// OpenBLAS, per shape) so both see the same machine load. Counter "FLOPS" = 2 M N K per second.
// Shapes: squares and the W1/W2 layer products of WORKLOADS.md, in the layouts the model uses
// (forward x w^T is NT, the weight gradient dy^T x is TN). Threads: --threads (default 2);
// --packing=always|never forces how our GEMM reads its operands (default: by shape).
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "core/parallel.hpp"
#include "core/rng.hpp"
#include "kernels/gemm.hpp"

#ifdef VIT_HAVE_OPENBLAS
#include <cblas.h>
#endif

namespace {

struct Shape {
  const char* name;
  int64_t M, N, K;
  bool ta, tb;
};

const Shape kShapes[] = {
    {"sq256", 256, 256, 256, false, false},
    {"sq512", 512, 512, 512, false, false},
    {"sq1024", 1024, 1024, 1024, false, false},
    {"w1_qkv_6400x64x192", 6400, 192, 64, false, true},
    {"w1_proj_6400x64x64", 6400, 64, 64, false, true},
    {"w1_fc1_6400x64x128", 6400, 128, 64, false, true},
    {"w1_fc2_6400x128x64", 6400, 64, 128, false, true},
    {"w1_wgrad_64x6400x192", 64, 192, 6400, true, false},
    {"w1_dgrad_6400x192x64", 6400, 64, 192, false, false},
    {"w1_wgrad_192x6400x64", 192, 64, 6400, true, false},
    {"w1_wgrad_64x6400x128", 64, 128, 6400, true, false},
    {"attn_s_50x16x50", 50, 50, 16, false, true},
    {"attn_s_nn_50x16x50", 50, 50, 16, false, false},
    {"attn_s_nn_48x16x48", 48, 48, 16, false, false},
    {"attn_pv_50x50x16", 50, 16, 50, false, false},
    {"w2_qkv_4160x192x576", 4160, 576, 192, false, true},
    {"w2_fc1_4160x192x768", 4160, 768, 192, false, true},
    {"w2_fc2_4160x768x192", 4160, 192, 768, false, true},
    {"w2_qkv_dgrad_4160x576x192", 4160, 192, 576, false, false},
    {"w2_qkv_wgrad_576x4160x192", 576, 192, 4160, true, false},
    {"w2_fc2_dgrad_4160x192x768", 4160, 768, 192, false, false},
    {"w2_fc2_wgrad_192x4160x768", 192, 768, 4160, true, false},
};

int g_threads = 2;

struct Operands {
  std::vector<float> a, b, c;
  int64_t lda, ldb;
  explicit Operands(const Shape& s) {
    vit::Rng rng(1, vit::RngPurpose::Test);
    a.resize(static_cast<size_t>(s.M * s.K));
    b.resize(static_cast<size_t>(s.K * s.N));
    c.assign(static_cast<size_t>(s.M * s.N), 0.0f);
    for (auto& x : a) x = rng.uniform() - 0.5f;
    for (auto& x : b) x = rng.uniform() - 0.5f;
    lda = s.ta ? s.M : s.K;
    ldb = s.tb ? s.K : s.N;
  }
};

void set_flops(benchmark::State& state, const Shape& s) {
  state.counters["FLOPS"] = benchmark::Counter(2.0 * double(s.M) * double(s.N) * double(s.K),
                                               benchmark::Counter::kIsIterationInvariantRate);
}

void bench_ours(benchmark::State& state, const Shape* s) {
  vit::set_num_threads(g_threads);
  Operands o(*s);
  for (auto _ : state) {
    vit::kernels::gemm(s->ta, s->tb, s->M, s->N, s->K, 1.0f, o.a.data(), o.lda, o.b.data(), o.ldb,
                       0.0f, o.c.data(), s->N);
    benchmark::ClobberMemory();
  }
  set_flops(state, *s);
  state.SetLabel(vit::kernels::gemm_simd_path());
}

#ifdef VIT_HAVE_OPENBLAS
void bench_openblas(benchmark::State& state, const Shape* s) {
  vit::set_num_threads(g_threads);
  openblas_set_num_threads(g_threads);
  Operands o(*s);
  for (auto _ : state) {
    cblas_sgemm(CblasRowMajor, s->ta ? CblasTrans : CblasNoTrans, s->tb ? CblasTrans : CblasNoTrans,
                int(s->M), int(s->N), int(s->K), 1.0f, o.a.data(), int(o.lda), o.b.data(),
                int(o.ldb), 0.0f, o.c.data(), int(s->N));
    benchmark::ClobberMemory();
  }
  set_flops(state, *s);
}
#endif

}  // namespace

int main(int argc, char** argv) {
  // Our own flag, removed before Google Benchmark parses the rest.
  std::vector<char*> args;
  for (int i = 0; i < argc; ++i) {
    if (std::strncmp(argv[i], "--threads=", 10) == 0) g_threads = std::atoi(argv[i] + 10);
    else if (std::strcmp(argv[i], "--packing=always") == 0)
      vit::kernels::detail::set_packing(vit::kernels::detail::Packing::Always);
    else if (std::strcmp(argv[i], "--packing=never") == 0)
      vit::kernels::detail::set_packing(vit::kernels::detail::Packing::Never);
    else args.push_back(argv[i]);
  }
  int n = static_cast<int>(args.size());
  for (const Shape& s : kShapes) {
    benchmark::RegisterBenchmark((std::string("ours/") + s.name).c_str(), bench_ours, &s)
        ->UseRealTime()
        ->Unit(benchmark::kMicrosecond);
#ifdef VIT_HAVE_OPENBLAS
    benchmark::RegisterBenchmark((std::string("openblas/") + s.name).c_str(), bench_openblas, &s)
        ->UseRealTime()
        ->Unit(benchmark::kMicrosecond);
#endif
  }
  benchmark::Initialize(&n, args.data());
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
