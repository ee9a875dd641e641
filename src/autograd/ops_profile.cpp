// Per-op timers for VIT_PROFILE=1 (see ops_profile.hpp).
#include "autograd/ops_profile.hpp"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <map>
#include <utility>

namespace vit {

namespace {

using Clock = std::chrono::steady_clock;

struct State {
  bool enabled = false;
  Clock::time_point last = Clock::now();
  std::map<std::string, OpProfileRow> rows;
};

State& state() {
  static State s = [] {
    State st;
    const char* v = std::getenv("VIT_PROFILE");
    st.enabled = v && *v && std::strcmp(v, "0") != 0;
    return st;
  }();
  return s;
}

BackwardFn wrap(BackwardFn backward, const char* name) {
  if (!backward) return backward;
  return [fn = std::move(backward), name](const Tensor& dout) {
    const auto t0 = Clock::now();
    fn(dout);
    State& s = state();
    s.rows[name].backward_s += std::chrono::duration<double>(Clock::now() - t0).count();
    s.last = Clock::now();  // backward time is not the next forward's
  };
}

void charge_forward(const char* name) {
  State& s = state();
  const auto now = Clock::now();
  OpProfileRow& r = s.rows[name];
  r.forward_s += std::chrono::duration<double>(now - s.last).count();
  ++r.calls;
  s.last = now;
}

}  // namespace

bool op_profile_enabled() { return state().enabled; }

void op_profile_mark() { state().last = Clock::now(); }

std::vector<OpProfileRow> op_profile_take() {
  State& s = state();
  std::vector<OpProfileRow> out;
  for (auto& [name, row] : s.rows) {
    row.name = name;
    out.push_back(row);
  }
  s.rows.clear();
  std::sort(out.begin(), out.end(), [](const OpProfileRow& a, const OpProfileRow& b) {
    return a.forward_s + a.backward_s > b.forward_s + b.backward_s;
  });
  return out;
}

Var profiled_record(Tensor out, std::initializer_list<Var> inputs, BackwardFn backward, const char* name) {
  if (!state().enabled) return record(std::move(out), inputs, std::move(backward), name);
  charge_forward(name);
  return record(std::move(out), inputs, wrap(std::move(backward), name), name);
}

Var profiled_record(Tensor out, const std::vector<Var>& inputs, BackwardFn backward, const char* name) {
  if (!state().enabled) return record(std::move(out), inputs, std::move(backward), name);
  charge_forward(name);
  return record(std::move(out), inputs, wrap(std::move(backward), name), name);
}

}  // namespace vit
