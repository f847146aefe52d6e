// The EdgeConv kernel: its contract (inputs, outputs, batching, example inputs) and its CPU
// implementation. The CUDA implementation is in edgeconv.cu; the independent reference in
// reference.py.
#include "edgeconv.hpp"

#include "edgeconv_math.hpp"

#include <cmath>
#include <string>

namespace edgeconv {

namespace {

/// splitmix64, as reference.py has it.
struct splitmix64 {
  std::uint64_t state;
  std::uint64_t next() {
    std::uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  double uniform() { return double(next() >> 11) * 0x1.0p-53; }  // [0, 1)
};

template <std::size_t N> void glorot(splitmix64& rng, std::array<float, N>& w, int fan_in, int fan_out) {
  const double limit = std::sqrt(6.0 / double(fan_in + fan_out));
  for (auto& v : w) v = float((2.0 * rng.uniform() - 1.0) * limit);
}
template <std::size_t N> void bias(splitmix64& rng, std::array<float, N>& b) {
  for (auto& v : b) v = float(0.1 * (2.0 * rng.uniform() - 1.0));
}

class edgeconv_kernel final : public offload::kernel {
 public:
  std::string_view name() const noexcept override { return "edgeconv"; }
  std::string_view version() const noexcept override { return "1"; }

  std::vector<offload::product_spec> output_specs(const offload::product_views& in) const override {
    const auto f = in.get<float>("features");
    const auto n = in.get<std::int32_t>("counts");
    const std::size_t per_jet = std::size_t(max_particles) * features;
    if (f.size() != n.size() * per_jet)
      throw offload::input_error("input 'features' has " + std::to_string(f.size()) + " elements; " +
                                 std::to_string(n.size()) + " jets (input 'counts') need " +
                                 std::to_string(n.size() * per_jet) + " (50 particles x 4 features each)");
    for (std::size_t j = 0; j < n.size(); ++j)
      if (n[j] < 0 || n[j] > max_particles)
        throw offload::input_error("input 'counts': jet " + std::to_string(j) + " has " + std::to_string(n[j]) +
                                   " particles, outside 0..50");
    const auto jets = std::int64_t(n.size());
    return {{"scores", offload::dtype::f32, n.size() * classes, {jets, classes}}};
  }

  void run_cpu(const offload::product_views& in, offload::message_writer& out) const override {
    const auto f = in.get<float>("features");
    const auto n = in.get<std::int32_t>("counts");
    auto scores = out.payload_as<float>(0);
    const auto& w = weights::standard();
    const net_view net{w.w1.data(), w.b1.data(), w.w2.data(), w.b2.data(),
                       w.w3.data(), w.b3.data(), w.w4.data(), w.b4.data()};
    std::array<float, max_particles * hidden> h{};
    for (std::size_t j = 0; j < n.size(); ++j) {
      const float* x = f.data() + j * max_particles * features;
      for (int i = 0; i < n[j]; ++i) particle_features(net, x, n[j], i, &h[std::size_t(i) * hidden]);
      jet_scores(net, h.data(), n[j], &scores[j * classes]);
    }
  }

  /// Jets are independent: requests join by concatenating jets.
  offload::batch_rule batching() const override { return {true, {}}; }

  /// As a model: per jet, 50 particles of 4 features (zero-padded) and the particle count in;
  /// 2 class scores out. The first dimension counts jets.
  offload::model_io io() const override {
    return {{{"features", offload::dtype::f32, {-1, max_particles, features}}, {"counts", offload::dtype::i32, {-1}}},
            {{"scores", offload::dtype::f32, {-1, classes}}},
            true};
  }

  /// size: jets; 10 to 50 particles each, uniform in a cone of radius 0.8 around the axis.
  std::vector<offload::product> make_inputs(const offload::input_params& p) const override {
    splitmix64 rng{p.seed};
    std::vector<float> f(p.size * max_particles * features, 0.0f);
    std::vector<std::int32_t> n(p.size);
    for (std::size_t j = 0; j < p.size; ++j) {
      n[j] = 10 + std::int32_t(rng.next() % 41);
      for (int i = 0; i < n[j]; ++i) {
        float* x = &f[(j * max_particles + std::size_t(i)) * features];
        const double r = 0.8 * std::sqrt(rng.uniform()), phi = 2 * M_PI * rng.uniform();
        x[0] = float(r * std::cos(phi));
        x[1] = float(r * std::sin(phi));
        x[2] = float(std::log(1.0 + 100.0 * rng.uniform()));  // log pT / GeV
        x[3] = float(x[2] + 0.5 * rng.uniform());             // log E >= log pT
      }
    }
    const auto jets = std::int64_t(p.size);
    return {offload::product::make("features", f, {jets, max_particles, features}),
            offload::product::make("counts", n)};
  }

  std::uint64_t default_size() const noexcept override { return 16; }  // jets per event

  offload::kernel_cost cost(const offload::product_views& in) const override {
    double flops = 0;
    for (const std::int32_t c : in.get<std::int32_t>("counts")) {
      const double k = std::min(neighbours, std::max(0, c - 1));
      flops += double(c) * (3.0 * c + k * 2.0 * (edge_in * hidden + hidden * hidden));
      flops += 2.0 * (hidden * head_hidden + head_hidden * classes);
    }
    return {flops, false};
  }

  const offload::cuda_implementation* cuda() const noexcept override { return cuda_implementation(); }
};

}  // namespace

const weights& weights::standard() {
  static const weights w = [] {
    weights m;
    splitmix64 rng{weight_seed};
    glorot(rng, m.w1, edge_in, hidden);
    bias(rng, m.b1);
    glorot(rng, m.w2, hidden, hidden);
    bias(rng, m.b2);
    glorot(rng, m.w3, hidden, head_hidden);
    bias(rng, m.b3);
    glorot(rng, m.w4, head_hidden, classes);
    bias(rng, m.b4);
    return m;
  }();
  return w;
}

const offload::kernel& kernel() {
  static const edgeconv_kernel k;
  return k;
}

#ifndef EDGECONV_WITH_CUDA
const offload::cuda_implementation* cuda_implementation() noexcept {
  return nullptr;
}
#endif

}  // namespace edgeconv
