// Start-of-run replication: rank 0's model (parameters and buffers, FAVOR+ projections and
// redraw counter included) and optimizer chain state (moments, step counters, Lookahead slow
// weights) are copied to every other rank, as DDP does at construction. So only rank 0 needs
// the checkpoint or --init-weights file; the other ranks only need the same config and data.
#pragma once
#include <cstdint>
#include <vector>

#include "dist/communicator.hpp"
#include "nn/vit.hpp"
#include "optim/optimizer.hpp"

namespace vit {

// Collective. Every rank must have built the same model and optimizer chain (same config).
void broadcast_training_state(Communicator& comm, ViT& model, Optimizer& optim, int root = 0);

// Collective: rank `root`'s values overwrite everyone's.
void broadcast_values(Communicator& comm, std::vector<double>& v, int root = 0);
void broadcast_values(Communicator& comm, std::vector<int64_t>& v, int root = 0);

}  // namespace vit
