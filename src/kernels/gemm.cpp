// GEMM driver: blocking, packing, threading, dispatch, the epilogue operands (scale, bias,
// residual); plus the portable micro-kernel. The AVX2 micro-kernel is in gemm_avx2.cpp. Each thread
// owns a rectangle of C and runs the Goto/BLIS loops on it: jc over its columns (kNC) -> pc over K
// (kc) -> pack its B block -> its rows in blocks of kMC -> pack A block -> 16-column panels ->
// 6-row panels (a narrow C taller than K swaps the pc and row-block loops, see gemm_region). Thin
// operands are read in place instead of packed (make_plan), and a long K with a small C runs as
// fixed K chunks summed in order (gemm_split_k). The k order of every C element depends only on the
// shape (the kc split, the K chunks), never on threads.
#include "kernels/gemm.hpp"

#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>

#include "core/parallel.hpp"

namespace vit::kernels {

namespace {

using detail::kMR;
using detail::kNR;

constexpr int64_t kKC = 256;   // max K block: a 16 x 256 B panel (16 KiB) stays in L1
constexpr int64_t kMC = 120;   // rows per packed A block (120 KiB at kc 256: L2)
constexpr int64_t kNC = 3072;  // columns per packed B block (3 MiB at kc 256: L3)
// make_plan: read A in place when at most this many column panels' worth of N reuse it, B when
// at most this many rows of C do (measured on the W1/W2 shapes and squares, bench_gemm).
constexpr int64_t kDirectMaxN = 256;
constexpr int64_t kDirectMaxM = 128;
constexpr int64_t kDirectMaxTransM = 256;  // A transposed: read in place up to this many rows
// gemm_region may run the K blocks inside each row block when C is at most this many columns wide
constexpr int64_t kKInnerMaxN = 256;
// Below this many multiply-adds a product runs on the calling thread (fork cost dominates).
constexpr int64_t kMinParallelMacs = 1 << 18;

int64_t round_up(int64_t x, int64_t m) { return (x + m - 1) / m * m; }

// Grow-only 64-byte aligned scratch, one per thread; resized only at call start.
class Scratch {
 public:
  ~Scratch() { std::free(p_); }
  float* get(int64_t n) {
    if (n > cap_) {
      std::free(p_);
      const size_t bytes = static_cast<size_t>(round_up(n, 16)) * sizeof(float);
      p_ = static_cast<float*>(std::aligned_alloc(64, bytes));
      cap_ = p_ ? n : 0;
    }
    return p_;
  }

 private:
  float* p_ = nullptr;
  int64_t cap_ = 0;
};
thread_local Scratch tls_a_pack;
thread_local Scratch tls_b_pack;

struct Problem {
  bool trans_a, trans_b;
  int64_t M, N, K;
  float alpha;
  const float* A;
  int64_t lda;
  const float* B;
  int64_t ldb;
  float beta;
  float* C;
  int64_t ldc;
  const float* bias;      // [N] or null
  const float* residual;  // [M, N] (ldr) or null
  int64_t ldr;
  const float* scale = nullptr;  // [M, N] (lds) or null: multiplies before bias and residual
  int64_t lds = 0;
};

// op(A)[i0 : i0+mc, p0 : p0+kc] -> 6-row panels dst[panel][p][r], rows past mc zero-filled.
void pack_a(float* dst, const Problem& pr, int64_t i0, int64_t mc, int64_t p0, int64_t kc) {
  if (pr.trans_a) {
    // op(A) rows are A's columns: read each A row once, scattering 6-float groups to panels.
    // The mc floats of a row are a short piece of a long row (a weight gradient's dy, usually
    // from memory) that the hardware prefetcher does not follow: the piece kPackAhead rows on is
    // prefetched by hand (W2's K = 576 / 768 weight gradients ~2% faster).
    constexpr int64_t kPackAhead = 8;
    for (int64_t p = 0; p < kc; ++p) {
      const float* src = pr.A + (p0 + p) * pr.lda + i0;
      if (p + kPackAhead < kc)
        for (int64_t c = 0; c < mc; c += 16) __builtin_prefetch(src + kPackAhead * pr.lda + c);
      for (int64_t ir = 0; ir < mc; ir += kMR) {
        float* dp = dst + ir * kc + p * kMR;
        const int64_t rows = mc - ir < kMR ? mc - ir : kMR;
        if (rows == kMR) {
          std::memcpy(dp, src + ir, sizeof(float) * kMR);
          continue;
        }
        int64_t r = 0;
        for (; r < rows; ++r) dp[r] = src[ir + r];
        for (; r < kMR; ++r) dp[r] = 0.0f;
      }
    }
    return;
  }
  for (int64_t ir = 0; ir < mc; ir += kMR) {
    float* d = dst + ir * kc;
    const int64_t rows = mc - ir < kMR ? mc - ir : kMR;
    if (rows == kMR) {
      // Full panel: walk the six rows together so each write is a contiguous 6-float group.
      const float* s0 = pr.A + (i0 + ir) * pr.lda + p0;
      const int64_t ld = pr.lda;
      for (int64_t p = 0; p < kc; ++p) {
        float* dp = d + p * kMR;
        dp[0] = s0[p];
        dp[1] = s0[ld + p];
        dp[2] = s0[2 * ld + p];
        dp[3] = s0[3 * ld + p];
        dp[4] = s0[4 * ld + p];
        dp[5] = s0[5 * ld + p];
      }
    } else {
      for (int64_t r = 0; r < rows; ++r) {
        const float* src = pr.A + (i0 + ir + r) * pr.lda + p0;
        for (int64_t p = 0; p < kc; ++p) d[p * kMR + r] = src[p];
      }
      for (int64_t r = rows; r < kMR; ++r)
        for (int64_t p = 0; p < kc; ++p) d[p * kMR + r] = 0.0f;
    }
  }
}

// op(B)[p0 : p0+kc, j0 : j0+nc] -> 16-column panels dst[panel][p][c], columns past nc
// zero-filled. Untransposed B is swept row by row (each source row read once).
void pack_b(float* dst, const Problem& pr, int64_t j0, int64_t nc, int64_t p0, int64_t kc,
            bool avx2) {
  const int64_t panels = (nc + kNR - 1) / kNR;
  if (!pr.trans_b) {
    for (int64_t p = 0; p < kc; ++p) {
      const float* src = pr.B + (p0 + p) * pr.ldb + j0;
      for (int64_t q = 0; q < panels; ++q) {
        const int64_t jr = q * kNR;
        float* dp = dst + jr * kc + p * kNR;
        const int64_t cols = nc - jr < kNR ? nc - jr : kNR;
        if (cols == kNR) {
          std::memcpy(dp, src + jr, sizeof(float) * kNR);
          continue;
        }
        int64_t c = 0;
        for (; c < cols; ++c) dp[c] = src[jr + c];
        for (; c < kNR; ++c) dp[c] = 0.0f;
      }
    }
    return;
  }
  for (int64_t q = 0; q < panels; ++q) {
    const int64_t jr = q * kNR;
    const int64_t cols = nc - jr < kNR ? nc - jr : kNR;
    float* d = dst + jr * kc;
    if (avx2 && cols == kNR) {
      detail::pack_b_trans_avx2(d, pr.B + (j0 + jr) * pr.ldb + p0, pr.ldb, kc);
      continue;
    }
    for (int64_t c = 0; c < cols; ++c) {
      const float* src = pr.B + (j0 + jr + c) * pr.ldb + p0;
      for (int64_t p = 0; p < kc; ++p) d[p * kNR + c] = src[p];
    }
    if (cols < kNR)
      for (int64_t p = 0; p < kc; ++p)
        for (int64_t c = cols; c < kNR; ++c) d[p * kNR + c] = 0.0f;
  }
}

// K == 0: C = beta * C (* scale) (+ bias) (+ residual).
void scale_only(const Problem& pr) {
  for (int64_t i = 0; i < pr.M; ++i) {
    float* c = pr.C + i * pr.ldc;
    for (int64_t j = 0; j < pr.N; ++j) {
      c[j] = pr.beta == 0.0f ? 0.0f : pr.beta * c[j];
      if (pr.scale) c[j] *= pr.scale[i * pr.lds + j];
      if (pr.bias) c[j] += pr.bias[j];
      if (pr.residual) c[j] += pr.residual[i * pr.ldr + j];
    }
  }
}

detail::MicroKernel select_kernel() {
  const char* env = std::getenv("VIT_SIMD");
  const bool forced_portable = env && std::strcmp(env, "portable") == 0;
  if (!forced_portable && detail::cpu_has_avx2_fma()) return detail::micro_kernel_avx2;
  return detail::micro_kernel_portable;
}

// One thread's share of C: rows [r0, r1) x columns [c0, c1). It packs its own A and B blocks,
// so threads never wait on each other (no barriers: on a loaded machine each barrier can cost a
// scheduler time slice).
struct Region {
  int64_t r0, r1, c0, c1;
};

// Which operands the micro-kernel reads straight from the caller's buffers instead of packed
// panels (see gemm_region for partial edge panels). Packing pays when a panel is reused
// many times from a contiguous copy; on the thin shapes of small transformers the copy costs as
// much as the product. The choice never changes the arithmetic, only where loads come from.
struct Plan {
  bool direct_a, direct_b;
};

std::atomic<detail::Packing> g_packing{detail::Packing::Auto};

Plan make_plan(const Problem& pr) {
  switch (g_packing.load(std::memory_order_relaxed)) {
    case detail::Packing::Always: return {false, false};
    case detail::Packing::Never: return {true, !pr.trans_b};
    case detail::Packing::Auto: break;
  }
  // A panel is reused by every column panel and a B panel by every row panel: packing pays
  // only when that reuse is large. A single K block keeps each A row's slice short (<= 1 KiB);
  // B is read in place only for short products (a long strided B panel thrashes L1). A
  // transposed A of few rows (the weight gradients dy^T x of small layers) is read in place too,
  // whatever K: a tile's 6 values per k are adjacent in one source row, and the scattering pack
  // cost ~16% of such a product (W1 weight gradients, one core: 80 -> 86-96 GFLOP/s).
  const bool direct_a =
      pr.K <= kKC || (pr.N <= kDirectMaxN && (!pr.trans_a || pr.M <= kDirectMaxTransM));
  return {direct_a, !pr.trans_b && pr.M <= kDirectMaxM && pr.K <= kKC};
}

// The register tiles of rows [i0, i0 + mc) x columns [jc, jc + nc) for the K block [pc, pc + kc),
// B's block packed at b_pack (unless read in place).
void gemm_block(const Problem& pr, detail::MicroKernel kern, const Plan& plan, float* a_pack,
                const float* b_pack, int64_t jc, int64_t nc, int64_t i0, int64_t mc, int64_t pc,
                int64_t kc) {
  const int64_t panels = (nc + kNR - 1) / kNR;
  // A partial edge panel read in place moves back to end at the matrix edge (when the matrix
  // has a whole panel's width or height) and stores only its new columns or rows; otherwise
  // the edge is packed zero-padded. Both are at the end of C: regions are whole panels.
  const bool shift_cols = plan.direct_b && pr.N >= kNR;
  const bool shift_rows = plan.direct_a && pr.M >= kMR;
  const float beta = pc == 0 ? pr.beta : 1.0f;
  const bool last = pc + kc == pr.K;
  const int64_t edge_rows = mc % kMR;
  if (!plan.direct_a) pack_a(a_pack, pr, i0, mc, pc, kc);
  else if (edge_rows && !shift_rows) pack_a(a_pack, pr, i0 + mc - edge_rows, edge_rows, pc, kc);
  for (int64_t q = 0; q < panels; ++q) {
    const int64_t j = jc + q * kNR;
    const int cols = static_cast<int>(nc - q * kNR < kNR ? nc - q * kNR : kNR);
    detail::Tile t{};
    int64_t jt = j;  // first column of the computed tile
    if (plan.direct_b && (cols == kNR || shift_cols)) {
      jt = j + cols - kNR;
      t.b = pr.B + pc * pr.ldb + jt, t.b_ks = pr.ldb, t.c0 = kNR - cols;
    } else {
      t.b = b_pack + (plan.direct_b ? 0 : q * kNR * kc), t.b_ks = kNR, t.c1 = cols;
    }
    if (last && pr.bias) t.bias = pr.bias + jt;
    for (int64_t ir = 0; ir < mc; ir += kMR) {
      const int64_t i = i0 + ir;
      const int rows = static_cast<int>(mc - ir < kMR ? mc - ir : kMR);
      int64_t it = i;  // first row of the computed tile
      if (plan.direct_a && (rows == kMR || shift_rows)) {
        it = i + rows - kMR;
        t.r0 = kMR - rows, t.r1 = kMR;
        if (pr.trans_a) t.a = pr.A + pc * pr.lda + it, t.a_rs = 1, t.a_cs = pr.lda;
        else t.a = pr.A + it * pr.lda + pc, t.a_rs = pr.lda, t.a_cs = 1;
      } else {
        t.a = a_pack + (plan.direct_a ? 0 : ir * kc), t.a_rs = 1, t.a_cs = kMR;
        t.r0 = 0, t.r1 = rows;
      }
      if (last && pr.scale) t.mul = pr.scale + it * pr.lds + jt, t.ldm = pr.lds;
      if (last && pr.residual) t.res = pr.residual + it * pr.ldr + jt, t.ldr = pr.ldr;
      kern(kc, t, pr.C + it * pr.ldc + jt, pr.ldc, pr.alpha, beta);
    }
  }
}

// Loops over one thread's region. Usually B's K block is packed once and swept by every row
// block (jc -> pc -> i0), and C is swept once per K block. When C is narrow and taller than K
// (so larger than all of B), the K blocks instead run inside each row block (jc -> i0 -> pc)
// from all of B packed up front: the row block's C tiles stay in L2 between their K blocks
// instead of going out to memory and back (W2's fc2 and K = 576 / 768 input gradients, 4160
// rows, 2 threads: 155 -> 172 GFLOP/s). Where B is the larger (the weight-gradient chunks) the
// usual order is ~10% faster. The k order of every element is the same either way.
void gemm_region(const Problem& pr, detail::MicroKernel kern, int64_t kcs, const Plan& plan,
                 const Region& rg) {
  if (rg.r0 >= rg.r1 || rg.c0 >= rg.c1) return;
  const bool avx2 = kern == detail::micro_kernel_avx2;
  const int64_t width = rg.c1 - rg.c0;
  const int64_t ncs = width < kNC ? width : kNC;
  const bool k_inner = pr.K > kcs && ncs <= kKInnerMaxN && rg.r1 - rg.r0 > pr.K && !plan.direct_b;
  float* a_pack = tls_a_pack.get(kMC * kcs);
  float* b_pack = tls_b_pack.get(round_up(ncs, kNR) * (k_inner ? pr.K : kcs));
  auto each_k_block = [&](auto f) {
    for (int64_t pc = 0; pc < pr.K; pc += kcs) f(pc, pr.K - pc < kcs ? pr.K - pc : kcs);
  };
  auto each_row_block = [&](auto f) {
    for (int64_t i0 = rg.r0; i0 < rg.r1; i0 += kMC) f(i0, rg.r1 - i0 < kMC ? rg.r1 - i0 : kMC);
  };
  for (int64_t jc = rg.c0; jc < rg.c1; jc += ncs) {
    const int64_t nc = rg.c1 - jc < ncs ? rg.c1 - jc : ncs;
    const int64_t edge_cols = nc % kNR;  // columns of a partial last panel (0: none)
    const bool shift_cols = plan.direct_b && pr.N >= kNR;
    // B's K block at pc, packed (or its partial edge panel, when B is read in place)
    auto pack_b_block = [&](float* dst, int64_t pc, int64_t kc) {
      if (!plan.direct_b) pack_b(dst, pr, jc, nc, pc, kc, avx2);
      else if (edge_cols && !shift_cols)
        pack_b(dst, pr, jc + nc - edge_cols, edge_cols, pc, kc, avx2);
    };
    const int64_t b_stride = round_up(nc, kNR);  // floats per k of a packed B block
    if (k_inner) {
      each_k_block([&](int64_t pc, int64_t kc) { pack_b_block(b_pack + b_stride * pc, pc, kc); });
      each_row_block([&](int64_t i0, int64_t mc) {
        each_k_block([&](int64_t pc, int64_t kc) {
          gemm_block(pr, kern, plan, a_pack, b_pack + b_stride * pc, jc, nc, i0, mc, pc, kc);
        });
      });
      continue;
    }
    each_k_block([&](int64_t pc, int64_t kc) {
      pack_b_block(b_pack, pc, kc);
      each_row_block([&](int64_t i0, int64_t mc) {
        gemm_block(pr, kern, plan, a_pack, b_pack, jc, nc, i0, mc, pc, kc);
      });
    });
  }
}

// Split C over `team` threads as a tm x tn grid of whole register tiles. Cost model per thread,
// in multiply-adds: its padded tile area x K, plus ~8 per packed element (rows x K of A and
// K x cols of B, each thread packing its own).
void choose_grid(int64_t M, int64_t N, int64_t K, int team, int64_t& tm, int64_t& tn) {
  const int64_t rp = (M + kMR - 1) / kMR, cp = (N + kNR - 1) / kNR;
  double best = -1.0;
  for (int64_t a = 1; a <= team; ++a) {
    if (team % a != 0) continue;
    const int64_t b = team / a;
    const double rows = double((rp + a - 1) / a * kMR), cols = double((cp + b - 1) / b * kNR);
    const double cost = rows * cols * double(K) + 8.0 * double(K) * (rows + cols);
    if (best < 0.0 || cost < best) {
      best = cost;
      tm = a;
      tn = b;
    }
  }
}

// Even K blocks no larger than kKC: depends on K only, so the k order is thread-independent.
int64_t k_block(int64_t K) {
  const int64_t kblocks = (K + kKC - 1) / kKC;
  return (K + kblocks - 1) / kblocks;
}

// Part t of C split as a tm x tn grid of whole register tiles.
Region grid_region(const Problem& pr, int64_t tm, int64_t tn, int64_t t) {
  const int64_t rp = (pr.M + kMR - 1) / kMR, cp = (pr.N + kNR - 1) / kNR;
  const int64_t i = t / tn, j = t % tn;
  const int64_t r1 = rp * (i + 1) / tm * kMR, c1 = cp * (j + 1) / tn * kNR;
  return {rp * i / tm * kMR, r1 < pr.M ? r1 : pr.M, cp * j / tn * kNR, c1 < pr.N ? c1 : pr.N};
}

// Runs `pieces` products sub(0 .. pieces-1), all with C of pr's M x N, over `team` threads: the
// threads share out the pieces, each piece's C split as a grid when there are more threads
// than pieces. Every C element is computed by one thread in one k order whatever the split.
template <typename Sub>
void run_pieces(const Problem& pr, int64_t pieces, Sub sub, int team, detail::MicroKernel kern,
                const Plan& plan) {
  int64_t tm = 1, tn = 1;
  const int per_piece = static_cast<int>((team + pieces - 1) / pieces);
  if (per_piece > 1) choose_grid(pr.M, pr.N, pr.K / pieces, per_piece, tm, tn);
  auto task = [&](int64_t t) {
    const Problem p = sub(t / (tm * tn));
    gemm_region(p, kern, k_block(p.K), plan, grid_region(p, tm, tn, t % (tm * tn)));
  };
  if (team > 1) parallel_for(0, pieces * tm * tn, task);
  else
    for (int64_t t = 0; t < pieces * tm * tn; ++t) task(t);
}

// Long K with a small C (the weight gradients dy^T x of a batch of tokens): kSplitK fixed K
// chunks, each into its own partial C, then summed in chunk order. Each operand is packed once
// in all (a split of C's rows or columns packs the other operand on every thread). The chunks
// depend on the shape only, so the bits do not depend on the number of threads.
constexpr int64_t kSplitK = 4;
bool use_split_k(const Problem& pr) { return pr.K >= kSplitK * kKC && pr.M * pr.N <= (1 << 18); }

thread_local Scratch tls_partials;

void gemm_split_k(const Problem& pr, detail::MicroKernel kern, const Plan& plan, int team) {
  const int64_t MN = pr.M * pr.N;
  float* partial = tls_partials.get(kSplitK * MN);
  run_pieces(pr, kSplitK, [&](int64_t c) {
    const int64_t k0 = pr.K * c / kSplitK, k1 = pr.K * (c + 1) / kSplitK;
    Problem sub = pr;
    sub.K = k1 - k0;
    sub.A = pr.trans_a ? pr.A + k0 * pr.lda : pr.A + k0;
    sub.B = pr.trans_b ? pr.B + k0 : pr.B + k0 * pr.ldb;
    sub.alpha = 1.0f, sub.beta = 0.0f, sub.C = partial + c * MN, sub.ldc = pr.N, sub.bias = nullptr;
    sub.residual = nullptr, sub.scale = nullptr;
    return sub;
  }, team, kern, plan);
  auto combine = [&](int64_t i) {
    float* c = pr.C + i * pr.ldc;
    for (int64_t j = 0; j < pr.N; ++j) {
      float sum = partial[i * pr.N + j];
      for (int64_t k = 1; k < kSplitK; ++k) sum += partial[k * MN + i * pr.N + j];
      float v = pr.beta == 0.0f ? pr.alpha * sum : pr.alpha * sum + pr.beta * c[j];
      if (pr.scale) v *= pr.scale[i * pr.lds + j];
      if (pr.bias) v += pr.bias[j];
      if (pr.residual) v += pr.residual[i * pr.ldr + j];
      c[j] = v;
    }
  };
  if (team > 1) parallel_for(0, pr.M, combine);
  else
    for (int64_t i = 0; i < pr.M; ++i) combine(i);
}

void gemm_run(const Problem& pr, detail::MicroKernel kern, bool may_thread) {
  if (pr.M <= 0 || pr.N <= 0) return;
  if (pr.K <= 0) {
    scale_only(pr);
    return;
  }
  int team = 1;
#ifdef _OPENMP
  if (may_thread && !omp_in_parallel() && pr.M * pr.N * pr.K >= kMinParallelMacs)
    team = omp_get_max_threads();
#else
  (void)may_thread;
#endif
  const Plan plan = make_plan(pr);
  if (use_split_k(pr)) return gemm_split_k(pr, kern, plan, team);
  run_pieces(pr, 1, [&](int64_t) { return pr; }, team, kern, plan);
}

}  // namespace

namespace detail {
void set_packing(Packing p) { g_packing.store(p, std::memory_order_relaxed); }

void micro_kernel_portable(int64_t kc, const Tile& t, float* c, int64_t ldc, float alpha,
                           float beta) {
  float acc[kMR][kNR] = {};
  for (int64_t p = 0; p < kc; ++p) {
    const float* bp = t.b + p * t.b_ks;
    for (int i = 0; i < kMR; ++i) {
      const float a = t.a[i * t.a_rs + p * t.a_cs];
      for (int j = 0; j < kNR; ++j) acc[i][j] += a * bp[j];
    }
  }
  for (int i = t.r0; i < t.r1; ++i)
    for (int j = t.c0; j < t.c1; ++j) {
      float v = beta == 0.0f ? alpha * acc[i][j] : alpha * acc[i][j] + beta * c[i * ldc + j];
      if (t.mul) v *= t.mul[i * t.ldm + j];
      if (t.bias) v += t.bias[j];
      if (t.res) v += t.res[i * t.ldr + j];
      c[i * ldc + j] = v;
    }
}
}  // namespace detail

void gemm_bias(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
               const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
               int64_t ldc, const float* bias, const float* residual, int64_t ldr) {
  const Problem pr{trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, bias,
                   residual, ldr};
  gemm_run(pr, select_kernel(), true);
}

void gemm_scaled(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                 const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
                 int64_t ldc, const float* S, int64_t lds) {
  Problem pr{trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, nullptr, nullptr, 0};
  pr.scale = S, pr.lds = lds;
  gemm_run(pr, select_kernel(), true);
}

void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
          int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  gemm_bias(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, nullptr);
}

void gemm_batched(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                  const float* A, int64_t lda, int64_t stride_a, const float* B, int64_t ldb,
                  int64_t stride_b, float beta, float* C, int64_t ldc, int64_t stride_c,
                  int64_t batch) {
  if (batch <= 0) return;
  const detail::MicroKernel kern = select_kernel();
  auto one = [&](int64_t i, bool may_thread) {
    const Problem pr{trans_a, trans_b, M, N, K, alpha, A + i * stride_a, lda, B + i * stride_b,
                     ldb, beta, C + i * stride_c, ldc, nullptr, nullptr, 0};
    gemm_run(pr, kern, may_thread);
  };
  // Many (or small) products: one per thread. Few large ones: threads inside each product.
  const bool per_item = batch >= 4 * num_threads() || M * N * K < 4 * kMinParallelMacs;
  if (per_item && batch * M * N * K < kMinParallelMacs) {
    for (int64_t i = 0; i < batch; ++i) one(i, false);  // too small to fork threads for
  } else if (per_item) {
    parallel_for(0, batch, [&](int64_t i) { one(i, false); });
  } else {
    for (int64_t i = 0; i < batch; ++i) one(i, true);
  }
}

const char* gemm_simd_path() {
  return select_kernel() == detail::micro_kernel_avx2 ? "avx2-fma" : "portable";
}

}  // namespace vit::kernels
