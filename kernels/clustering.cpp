// clustering: calorimeter-like clustering — 4-connected components of the cells of a
// rows x cols grid whose energy exceeds a threshold (a reconstruction stand-in).
#include "builtin.hpp"

#include <numeric>

namespace offload::kernels {

namespace {

std::int32_t find_root(std::vector<std::int32_t>& parent, std::int32_t i) {
  while (parent[i] != i) {
    parent[i] = parent[parent[i]];
    i = parent[i];
  }
  return i;
}

}  // namespace

void cluster_cells(const float* energy, int rows, int cols, float threshold, std::int32_t* label, float* sum) {
  const std::size_t n = std::size_t(rows) * cols;
  std::vector<std::int32_t> parent(n);
  std::iota(parent.begin(), parent.end(), 0);
  auto active = [&](std::size_t i) { return energy[i] > threshold; };
  auto unite = [&](std::int32_t a, std::int32_t b) {
    a = find_root(parent, a);
    b = find_root(parent, b);
    if (a != b) parent[std::max(a, b)] = std::min(a, b);  // the root is the smallest index
  };
  for (int r = 0; r < rows; ++r)
    for (int c = 0; c < cols; ++c) {
      const std::size_t i = std::size_t(r) * cols + c;
      if (!active(i)) continue;
      if (c + 1 < cols && active(i + 1)) unite(std::int32_t(i), std::int32_t(i + 1));
      if (r + 1 < rows && active(i + cols)) unite(std::int32_t(i), std::int32_t(i + cols));
    }
  std::vector<double> total(n, 0.0);
  for (std::size_t i = 0; i < n; ++i) {
    label[i] = active(i) ? find_root(parent, std::int32_t(i)) : -1;
    if (label[i] >= 0) total[label[i]] += energy[i];
  }
  for (std::size_t i = 0; i < n; ++i) sum[i] = label[i] >= 0 ? float(total[label[i]]) : 0.0f;
}

namespace {

constexpr std::int64_t max_cells = std::int64_t{1} << 30;

class clustering final : public kernel {
 public:
  std::string_view name() const noexcept override { return "clustering"; }
  std::string_view version() const noexcept override { return "1"; }
  std::uint64_t default_size() const noexcept override { return 64; }  // 64 x 64 cells
  std::vector<product_spec> output_specs(const product_views& in) const override {
    auto e = in.get<float>("energy");
    auto shape = in.get<std::int32_t>("shape");
    scalar_input<float>(in, "threshold");
    if (shape.size() != 2)
      throw input_error("input 'shape' must have 2 elements (rows, cols), has " + std::to_string(shape.size()));
    if (shape[0] < 1 || shape[1] < 1 || std::int64_t(shape[0]) * shape[1] > max_cells)
      throw input_error("input 'shape' is " + std::to_string(shape[0]) + " x " + std::to_string(shape[1]) +
                        ": both must be positive and the product at most 2^30");
    if (std::int64_t(shape[0]) * shape[1] != std::int64_t(e.size()))
      throw input_error("input 'energy' has " + std::to_string(e.size()) + " cells, but 'shape' is " +
                        std::to_string(shape[0]) + " x " + std::to_string(shape[1]));
    return {{"cluster", dtype::i32, e.size()}, {"cluster_energy", dtype::f32, e.size()}};
  }
  /// As a model: the grid's cells row by row, its (rows, cols), the seed threshold; a cluster
  /// number and the cluster's energy per cell.
  model_io io() const override {
    return {{{"energy", dtype::f32, {-1}}, {"shape", dtype::i32, {2}}, {"threshold", dtype::f32, {1}}},
            {{"cluster", dtype::i32, {-1}}, {"cluster_energy", dtype::f32, {-1}}},
            false};
  }
  void run_cpu(const product_views& in, message_writer& out) const override {
    auto e = in.get<float>("energy");
    auto shape = in.get<std::int32_t>("shape");
    cluster_cells(e.data(), shape[0], shape[1], scalar_input<float>(in, "threshold"),
                  out.payload_as<std::int32_t>(0).data(), out.payload_as<float>(1).data());
  }
  /// size: grid side (size x size cells); about 30% of cells above the threshold 0.5.
  std::vector<product> make_inputs(const input_params& p) const override { return inputs<product>(p, product::zeros); }
  std::vector<pooled_product> make_inputs(const input_params& p, const product_maker& make) const override {
    return inputs<pooled_product>(p, make);
  }

 private:
  template <class P, class Make> static std::vector<P> inputs(const input_params& p, const Make& make) {
    splitmix64 rng{p.seed};
    std::vector<P> in;
    in.push_back(make("energy", dtype::f32, p.size * p.size));
    for (auto& v : in[0].template as<float>()) {
      double u = rng.uniform();
      v = float(u < 0.3 ? 0.5 + 4.0 * u : 0.4 * u);
    }
    in.push_back(make("shape", dtype::i32, 2));
    in[1].template as<std::int32_t>()[0] = std::int32_t(p.size);
    in[1].template as<std::int32_t>()[1] = std::int32_t(p.size);
    in.push_back(make("threshold", dtype::f32, 1));
    in[2].template as<float>()[0] = 0.5f;
    return in;
  }
};

}  // namespace

const kernel& clustering_kernel() {
  static const clustering k;
  return k;
}

}  // namespace offload::kernels
