#pragma once
// A ParticleNet-style EdgeConv jet tagger as an mpi-offload kernel: what a physicist would
// offload. Per jet, up to 50 particles with 4 features each (Δη, Δφ, log pT, log E relative to
// the jet):
//   1. the k = 16 nearest neighbours of each particle in (Δη, Δφ) (fewer when the jet has fewer
//      particles; distances in double, ties to the lower index);
//   2. an edge MLP on (x_i, x_j − x_i): 8 → 32 → 32, ReLU after each layer;
//   3. mean over the neighbours, then ReLU: a 32-vector per particle;
//   4. mean over the jet's particles, then a head 32 → 16 (ReLU) → 2, softmax: two scores.
// Weights are Glorot-uniform from splitmix64 seed 7 (reference.py regenerates them).
//
// Inputs:  "features" f32[jets · 50 · 4] (padded with zeros), "counts" i32[jets] in 0..50.
// Outputs: "scores"   f32[jets · 2].
#include <offload/kernel.hpp>

#include <array>
#include <cstdint>

namespace edgeconv {

inline constexpr int max_particles = 50;
inline constexpr int features = 4;  // per particle; the first two are the (Δη, Δφ) coordinates
inline constexpr int neighbours = 16;
inline constexpr int edge_in = 2 * features;
inline constexpr int hidden = 32;
inline constexpr int head_hidden = 16;
inline constexpr int classes = 2;
inline constexpr std::uint64_t weight_seed = 7;

/// The network's weights, row-major [out][in], in the order reference.py draws them.
struct weights {
  std::array<float, hidden * edge_in> w1;
  std::array<float, hidden> b1;
  std::array<float, hidden * hidden> w2;
  std::array<float, hidden> b2;
  std::array<float, head_hidden * hidden> w3;
  std::array<float, head_hidden> b3;
  std::array<float, classes * head_hidden> w4;
  std::array<float, classes> b4;

  static const weights& standard();
};

/// The kernel (a static object; add it to a registry with `registry.add(edgeconv::kernel())`).
const offload::kernel& kernel();

/// Its CUDA implementation (edgeconv.cu), or nullptr in a build without CUDA.
const offload::cuda_implementation* cuda_implementation() noexcept;

}  // namespace edgeconv
