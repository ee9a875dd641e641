// Thread-count invariance: the same inputs give bit-identical results with 1 and 2 OpenMP
// threads for layer_norm backward (dx, dweight, dbias), softmax backward, cross-entropy
// (loss and gradient), GELU and qkv_attention, on shapes big enough to be split over threads.
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "autograd/gradcheck.hpp"
#include "autograd/ops.hpp"
#include "core/parallel.hpp"

using namespace vit;

namespace {
struct Grads {
  std::vector<std::vector<float>> tensors;
};

// Runs f with n threads and returns the named outputs (values and gradients).
template <typename F>
Grads with_threads(int n, F f) {
  const int before = num_threads();
  set_num_threads(n);
  Grads g = f();
  set_num_threads(before);
  return g;
}

void expect_bit_identical(const Grads& a, const Grads& b) {
  ASSERT_EQ(a.tensors.size(), b.tensors.size());
  for (size_t t = 0; t < a.tensors.size(); ++t) {
    ASSERT_EQ(a.tensors[t].size(), b.tensors[t].size());
    EXPECT_EQ(0, std::memcmp(a.tensors[t].data(), b.tensors[t].data(), a.tensors[t].size() * sizeof(float)))
        << "tensor " << t << " differs between 1 and 2 threads";
  }
}
}  // namespace

TEST(Determinism, LayerNormBackward) {
  auto run = [] {
    Var x(random_tensor({512, 192}, 50, -3.0f, 3.0f), true);
    Var w(random_tensor({192}, 51), true), b(random_tensor({192}, 52), true);
    Var y = layer_norm(x, w, b, 1e-6f);
    backward(y, random_tensor({512, 192}, 53));
    return Grads{{y.value().to_vector(), x.grad().to_vector(), w.grad().to_vector(), b.grad().to_vector()}};
  };
  expect_bit_identical(with_threads(1, run), with_threads(2, run));
}

TEST(Determinism, SoftmaxAndCrossEntropy) {
  auto run = [] {
    Var x(random_tensor({512, 192}, 60, -6.0f, 6.0f), true);
    Var y = softmax(x);
    backward(y, random_tensor({512, 192}, 61));
    Var z(random_tensor({512, 100}, 62, -6.0f, 6.0f), true);
    std::vector<int32_t> labels(512);
    for (int i = 0; i < 512; ++i) labels[i] = (i * 37) % 100;
    Var loss = cross_entropy(z, labels, 0.1f);
    backward(loss);
    return Grads{{y.value().to_vector(), x.grad().to_vector(), loss.value().to_vector(), z.grad().to_vector()}};
  };
  expect_bit_identical(with_threads(1, run), with_threads(2, run));
}

TEST(Determinism, ElementwiseAndShapeOps) {
  auto run = [] {
    Var x(random_tensor({64, 65, 192}, 70, -3.0f, 3.0f), true);
    Var w(random_tensor({192}, 71), true);
    Var y = mean_tokens(gelu(mul(x, w)));
    backward(y, random_tensor({64, 192}, 72));
    return Grads{{y.value().to_vector(), x.grad().to_vector(), w.grad().to_vector()}};
  };
  expect_bit_identical(with_threads(1, run), with_threads(2, run));
}

TEST(Determinism, QkvAttention) {
  // W1's shapes (50 tokens, 4 heads of 16) at batch 40: 16 fixed chunks of samples, 2-3 each.
  auto run = [] {
    Var x(random_tensor({40, 50, 64}, 80), true);
    Var w(random_tensor({192, 64}, 81), true), b(random_tensor({192}, 82), true);
    Var y = qkv_attention(x, w, b, 4);
    backward(y, random_tensor({40, 50, 64}, 83));
    return Grads{{y.value().to_vector(), x.grad().to_vector(), w.grad().to_vector(), b.grad().to_vector()}};
  };
  expect_bit_identical(with_threads(1, run), with_threads(2, run));
}
