// Data-parallel pieces: sharding arithmetic, the threads-per-rank policy, failure agreement,
// gradient averaging, replica fingerprints and state replication. Runs as a plain gtest (one
// process: LocalComm semantics) and, registered a second time by tests/cli/CMakeLists.txt,
// under `mpirun -np 2` (the MPI tests below run only when the world has 2 ranks).
#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <set>

#include "data/loader.hpp"
#include "dist/agree.hpp"
#include "dist/communicator.hpp"
#include "dist/grad_reducer.hpp"
#include "dist/state_sync.hpp"
#include "dist/threads.hpp"
#include "nn/vit.hpp"
#include "optim/make_optimizer.hpp"

using namespace vit;

namespace {
std::unique_ptr<Communicator> g_comm;
struct DistEnv : ::testing::Environment {
  void SetUp() override { g_comm = make_communicator(nullptr, nullptr); }
  void TearDown() override { g_comm.reset(); }
};
[[maybe_unused]] auto* const g_env = ::testing::AddGlobalTestEnvironment(new DistEnv);
Communicator& comm() { return *g_comm; }

ModelConfig tiny_model() {
  ModelConfig c;
  c.image_size = 8, c.channels = 1, c.num_classes = 3, c.patch_size = 4, c.dim = 16, c.depth = 1, c.heads = 2;
  c.mlp_ratio = 2;
  return c;
}
}  // namespace

TEST(Shard, RanksPartitionTheGlobalBatchLikeDistributedSampler) {
  for (int64_t world : {1, 2, 3, 4}) {
    for (int64_t count : {0, 1, 5, 8, 12}) {
      std::multiset<int64_t> seen;
      for (int64_t r = 0; r < world; ++r) {
        const auto pos = shard_positions(40, count, r, world);
        for (size_t j = 0; j < pos.size(); ++j) {
          EXPECT_EQ(pos[j], 40 + r + world * static_cast<int64_t>(j));  // indices[rank::world]
          seen.insert(pos[j]);
        }
        if (count % world == 0) {
          EXPECT_EQ(static_cast<int64_t>(pos.size()), count / world);
        }
      }
      std::multiset<int64_t> want;
      for (int64_t p = 40; p < 40 + count; ++p) want.insert(p);
      EXPECT_EQ(seen, want) << "world " << world << " count " << count;
    }
  }
  EXPECT_THROW(shard_positions(0, 4, 2, 2), Error);
}

TEST(Threads, PlanFollowsBindingAndWarnsOnOversubscription) {
  EXPECT_EQ(plan_rank_threads(0, 2, 1, 2).threads, 1);   // mpirun default: bound to one core
  EXPECT_EQ(plan_rank_threads(0, 2, 8, 8).threads, 4);   // --bind-to none: share the host
  EXPECT_EQ(plan_rank_threads(0, 16, 8, 8).threads, 1);  // never 0
  EXPECT_TRUE(plan_rank_threads(0, 2, 4, 8).warning.empty());
  const ThreadPlan over = plan_rank_threads(3, 2, 8, 4);
  EXPECT_EQ(over.threads, 3);
  EXPECT_NE(over.warning.find("oversubscribed"), std::string::npos);
}

TEST(Agree, OneProcessPassesErrorsThroughUnchanged) {
  LocalComm local;
  try {
    agree(local, [] { fail(ErrorKind::Data, "bad image"); });
    FAIL() << "no throw";
  } catch (const CollectiveError&) {
    FAIL() << "wrapped";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Data);
    EXPECT_STREQ(e.what(), "bad image");
  }
  int calls = 0;
  agree(local, [&] { ++calls; });
  EXPECT_EQ(calls, 1);
}

TEST(GradReducer, AveragesAcrossRanksInBucketsBitIdentically) {
  // Rank r's gradient of element i is (r + 1) * f(i); the mean over R ranks, in double, is the
  // reference. Buckets of 64 bytes (many calls) and one big bucket must give the same bits.
  const int R = comm().size(), r = comm().rank();
  ViT model(tiny_model(), 7);
  auto params = model.parameters();
  auto fill = [&] {
    for (auto& p : params) {
      float* g = p.var.grad().data();
      for (int64_t i = 0; i < p.var.numel(); ++i) g[i] = static_cast<float>(r + 1) * (0.001f * static_cast<float>(i % 97) - 0.05f);
    }
  };
  GradReducer small(comm(), params, 64), big(comm(), params, int64_t{1} << 30);
  EXPECT_GT(small.buckets(), 10);
  EXPECT_EQ(big.buckets(), 1);
  fill();
  small.average();
  std::vector<std::vector<float>> a;
  for (auto& p : params) a.emplace_back(p.var.grad().data(), p.var.grad().data() + p.var.numel());
  fill();
  big.average();
  for (size_t k = 0; k < params.size(); ++k) {
    const float* g = params[k].var.grad().data();
    for (int64_t i = 0; i < params[k].var.numel(); ++i) {
      ASSERT_EQ(a[k][static_cast<size_t>(i)], g[i]) << params[k].name << "[" << i << "]";
      const double want = static_cast<double>(static_cast<float>(0.001f * static_cast<float>(i % 97) - 0.05f)) * (R + 1) / 2.0;
      ASSERT_NEAR(g[i], want, 1e-6) << params[k].name << "[" << i << "]";
    }
  }
}

TEST(Replicas, FingerprintCatchesADivergedRank) {
  ViT model(tiny_model(), 7);
  auto params = model.parameters();
  EXPECT_EQ(params_fingerprint(params), params_fingerprint(ViT(tiny_model(), 7).parameters()));
  EXPECT_NE(params_fingerprint(params), params_fingerprint(ViT(tiny_model(), 8).parameters()));
  check_replicas_equal(comm(), params, 1);  // same seed everywhere: equal
  if (comm().size() < 2) return;
  if (comm().rank() == 1) params[0].var.value().data()[0] += 1e-7f;
  try {
    check_replicas_equal(comm(), params, 2);
    FAIL() << "rank " << comm().rank() << ": no error";
  } catch (const CollectiveError& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Internal);
    EXPECT_NE(std::string(e.what()).find("diverged"), std::string::npos);
  }
}

TEST(Mpi, AllreduceBroadcastAndAgreement) {
  if (comm().size() != 2) GTEST_SKIP() << "needs mpirun -np 2";
  const int r = comm().rank();
  std::vector<float> f = {1.5f * static_cast<float>(r + 1), -2.0f};
  comm().allreduce_sum(f.data(), 2);
  EXPECT_EQ(f[0], 4.5f);
  EXPECT_EQ(f[1], -4.0f);
  int64_t mx[2] = {r, 10 - r};
  comm().allreduce_max(mx, 2);
  EXPECT_EQ(mx[0], 1);
  EXPECT_EQ(mx[1], 10);
  std::string s = r == 0 ? "from rank zero" : "";
  broadcast_string(comm(), s, 0);
  EXPECT_EQ(s, "from rank zero");
  // Rank 1 fails: both ranks throw the same kind, with rank 1's message.
  try {
    agree(comm(), [&] {
      if (r == 1) fail(ErrorKind::Data, "cannot decode x.png");
    });
    FAIL() << "rank " << r << ": no error";
  } catch (const CollectiveError& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Data);
    EXPECT_EQ(e.failed_rank(), 1);
    EXPECT_NE(std::string(e.what()).find("cannot decode x.png"), std::string::npos);
    if (r == 0) {
      EXPECT_EQ(std::string(e.what()).rfind("rank 1: ", 0), 0u);
    }
  }
  agree(comm(), [] {});  // and the group still works afterwards
}

TEST(Mpi, StateReplicationMakesRanksIdentical) {
  if (comm().size() != 2) GTEST_SKIP() << "needs mpirun -np 2";
  // Different seeds per rank -> different models and optimizer state; after the broadcast
  // every rank holds rank 0's (parameters, Adam moments, Lookahead slow weights, counters).
  const int r = comm().rank();
  ViT model(tiny_model(), 100 + static_cast<uint64_t>(r));
  OptimSettings os;
  os.lookahead = LookaheadSettings{};
  auto optim = make_optimizer(os, model.parameters());
  for (int step = 0; step <= r; ++step) {  // rank 1 takes one step more
    for (auto& p : model.parameters()) p.var.grad().data()[0] = 0.5f + static_cast<float>(r);
    optim->step(1e-2f);
  }
  broadcast_training_state(comm(), model, *optim);
  check_replicas_equal(comm(), model.parameters(), 0);
  OptimState st;
  optim->save_state(st);
  std::vector<double> sums;
  for (auto& [name, t] : st.tensors) {
    double s = 0;
    for (int64_t i = 0; i < t.numel(); ++i) s += t.data()[i];
    sums.push_back(s);
  }
  for (auto& [name, v] : st.ints) sums.push_back(static_cast<double>(v));
  std::vector<double> mine = sums;
  broadcast_values(comm(), sums, 0);
  EXPECT_EQ(mine, sums);  // rank 1's optimizer state now equals rank 0's
}
