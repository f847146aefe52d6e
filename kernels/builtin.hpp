#pragma once
// The built-in kernels (private to the project; users reach them through kernel_registry).

#include <offload/kernel.hpp>

#include "kernel_math.hpp"

#include <array>
#include <vector>

namespace offload::kernels {

/// Returns the inputs' single-element parameter `name` of type T, checked.
template <class T> T scalar_input(const product_views& in, std::string_view name) {
  auto v = in.get<T>(name);
  if (v.size() != 1)
    throw input_error("input '" + std::string(name) + "' must have 1 element, has " + std::to_string(v.size()));
  return v[0];
}

/// mlp weights, generated deterministically from a seed.
struct mlp_weights {
  std::array<std::vector<float>, mlp_layers> w;
  std::array<std::vector<float>, mlp_layers> b;
  std::array<int, mlp_layers + 1> width{mlp_features, mlp_hidden, mlp_hidden, mlp_classes};

  static mlp_weights generate(std::uint64_t seed);
  /// The weights the registered `mlp` kernel uses (seed 2024).
  static const mlp_weights& standard();
  std::array<dense_layer, mlp_layers> layers() const;
};

/// Clustering on the host: 4-connected components of cells above `threshold`.
/// label[i] = smallest index in the cell's component, or -1; sum[i] = the component's energy.
void cluster_cells(const float* energy, int rows, int cols, float threshold, std::int32_t* label, float* sum);

const kernel& echo_kernel();
const kernel& synthetic_kernel();
const kernel& mlp_kernel();
const kernel& clustering_kernel();

}  // namespace offload::kernels
