// mlp: dense-network inference over jets (a tagger stand-in): 16 features → 64 → 64 → 4,
// ReLU, softmax; weights generated from a fixed seed.
#include "builtin.hpp"

#include <cmath>

namespace offload::kernels {

mlp_weights mlp_weights::generate(std::uint64_t seed) {
  mlp_weights m;
  splitmix64 rng{seed};
  for (int l = 0; l < mlp_layers; ++l) {
    const int in = m.width[l], out = m.width[l + 1];
    const double scale = std::sqrt(6.0 / (in + out));  // Glorot uniform
    m.w[l].resize(std::size_t(in) * out);
    m.b[l].resize(out);
    for (auto& v : m.w[l]) v = float((2.0 * rng.uniform() - 1.0) * scale);
    for (auto& v : m.b[l]) v = float(0.1 * (2.0 * rng.uniform() - 1.0));
  }
  return m;
}

const mlp_weights& mlp_weights::standard() {
  static const mlp_weights w = generate(2024);
  return w;
}

std::array<dense_layer, mlp_layers> mlp_weights::layers() const {
  std::array<dense_layer, mlp_layers> out;
  for (int l = 0; l < mlp_layers; ++l) out[l] = {w[l].data(), b[l].data(), width[l], width[l + 1]};
  return out;
}

namespace {

class mlp final : public kernel {
 public:
  std::string_view name() const noexcept override { return "mlp"; }
  std::string_view version() const noexcept override { return "1"; }
  std::uint64_t default_size() const noexcept override { return 256; }  // jets
  std::vector<product_spec> output_specs(const product_views& in) const override {
    auto f = in.get<float>("features");
    if (f.size() % mlp_features != 0)
      throw input_error("input 'features' has " + std::to_string(f.size()) + " elements, not a multiple of " +
                        std::to_string(mlp_features) + " features per jet");
    return {{"scores", dtype::f32, f.size() / mlp_features * mlp_classes}};
  }
  void run_cpu(const product_views& in, message_writer& out) const override {
    auto f = in.get<float>("features");
    auto s = out.payload_as<float>(0);
    const auto layers = mlp_weights::standard().layers();
    const std::size_t jets = f.size() / mlp_features;
    for (std::size_t j = 0; j < jets; ++j) mlp_forward(layers.data(), &f[j * mlp_features], &s[j * mlp_classes]);
  }
  batch_rule batching() const override { return {true, {}}; }
  /// As a model: a batch of jets, mlp_features features each, in; mlp_classes scores each out.
  model_io io() const override {
    return {{{"features", dtype::f32, {-1, mlp_features}}}, {{"scores", dtype::f32, {-1, mlp_classes}}}, true};
  }
  /// A multiply and an add per weight and jet.
  kernel_cost cost(const product_views& in) const override {
    const double per_jet = 2.0 * (mlp_features * mlp_hidden + mlp_hidden * mlp_hidden + mlp_hidden * mlp_classes);
    return {per_jet * double(in.at("features").count / mlp_features), false};
  }
  /// size: number of jets; features uniform in [-1, 1).
  std::vector<product> make_inputs(const input_params& p) const override { return inputs<product>(p, product::zeros); }
  std::vector<pooled_product> make_inputs(const input_params& p, const product_maker& make) const override {
    return inputs<pooled_product>(p, make);
  }

 private:
  template <class P, class Make> static std::vector<P> inputs(const input_params& p, const Make& make) {
    splitmix64 rng{p.seed};
    std::vector<P> in;
    in.push_back(make("features", dtype::f32, p.size * mlp_features));
    for (auto& v : in[0].template as<float>()) v = float(2.0 * rng.uniform() - 1.0);
    return in;
  }
};

}  // namespace

const kernel& mlp_kernel() {
  static const mlp k;
  return k;
}

}  // namespace offload::kernels
