#include "dist/state_sync.hpp"

namespace vit {

namespace {
void broadcast_tensor(Communicator& comm, Tensor& t, int root) {
  comm.broadcast(t.data(), t.numel() * static_cast<int64_t>(sizeof(float)), root);
}
}  // namespace

void broadcast_training_state(Communicator& comm, ViT& model, Optimizer& optim, int root) {
  if (!comm.distributed()) return;
  StateDict state;
  for (auto& [name, t] : model.state_dict(false)) state.emplace_back(name, t.clone());
  for (auto& [name, t] : state) broadcast_tensor(comm, t, root);
  model.load_state_dict(state, /*strict=*/true);
  OptimState os;
  optim.save_state(os);  // deep copies, same names and shapes on every rank
  for (auto& [name, t] : os.tensors) broadcast_tensor(comm, t, root);
  std::vector<int64_t> ints;
  for (auto& [name, v] : os.ints) ints.push_back(v);
  broadcast_values(comm, ints, root);
  for (size_t i = 0; i < ints.size(); ++i) os.ints[i].second = ints[i];
  optim.load_state(os);
}

void broadcast_values(Communicator& comm, std::vector<double>& v, int root) {
  if (comm.distributed() && !v.empty()) comm.broadcast(v.data(), static_cast<int64_t>(v.size() * sizeof(double)), root);
}
void broadcast_values(Communicator& comm, std::vector<int64_t>& v, int root) {
  if (comm.distributed() && !v.empty()) comm.broadcast(v.data(), static_cast<int64_t>(v.size() * sizeof(int64_t)), root);
}

}  // namespace vit
