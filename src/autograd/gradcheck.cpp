#include "autograd/gradcheck.hpp"

#include <cmath>
#include <sstream>

#include "core/rng.hpp"

namespace vit {

Tensor random_tensor(const Shape& shape, uint64_t key, float lo, float hi) {
  Tensor t = Tensor::empty(shape);
  Rng rng(key, RngPurpose::Test);
  for (int64_t i = 0; i < t.numel(); ++i) t[i] = lo + (hi - lo) * rng.uniform();
  return t;
}

namespace {

double projected(const Var& y, const Tensor& r) {
  double s = 0.0;
  for (int64_t i = 0; i < y.numel(); ++i) s += static_cast<double>(y.value()[i]) * r[i];
  return s;
}

}  // namespace

GradcheckResult gradcheck(const GradFn& f, const std::vector<Var>& inputs, const GradcheckOptions& opt) {
  GradcheckResult result;
  std::ostringstream report;
  int reported = 0;

  for (const Var& x : inputs) {
    Var v = x;
    if (v.requires_grad()) v.zero_grad();
  }
  Var y = f(inputs);
  const Tensor r = random_tensor(y.shape(), opt.seed ^ 0x5eed, -1.0f, 1.0f);
  backward(y, r);

  Rng pick(opt.seed, RngPurpose::Test, 1);
  for (size_t k = 0; k < inputs.size(); ++k) {
    Var x = inputs[k];
    if (!x.requires_grad()) continue;
    const Tensor analytic = x.grad().clone();
    const int64_t n = x.numel();
    const int64_t checks = std::min(n, opt.max_checks_per_input);
    for (int64_t c = 0; c < checks; ++c) {
      const int64_t i = checks == n ? c : static_cast<int64_t>(pick.below(static_cast<uint64_t>(n)));
      float& xi = x.value()[i];
      const float saved = xi;
      const double h = opt.step * std::max(1.0, std::fabs(static_cast<double>(saved)));
      double lp, lm;
      {
        NoGradGuard no_grad;
        xi = static_cast<float>(saved + h);
        lp = projected(f(inputs), r);
        xi = static_cast<float>(saved - h);
        lm = projected(f(inputs), r);
      }
      const double actual_2h = static_cast<double>(static_cast<float>(saved + h)) -
                               static_cast<double>(static_cast<float>(saved - h));
      xi = saved;
      const double numeric = (lp - lm) / actual_2h;
      const double a = analytic[i];
      const double err = std::fabs(a - numeric);
      result.max_abs_error = std::max(result.max_abs_error, err);
      if (!(err <= opt.atol + opt.rtol * std::fabs(numeric))) {
        result.ok = false;
        if (reported++ < 8)
          report << "input " << k << " " << x.shape() << " element " << i << ": analytic " << a
                 << " numeric " << numeric << "\n";
      }
    }
  }
  result.report = report.str();
  return result;
}

}  // namespace vit
