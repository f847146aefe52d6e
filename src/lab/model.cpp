// Model stand-ins (offload/model.hpp): inference-shaped kernels defined by data.
#include <offload/model.hpp>

#include "kernels/builtin.hpp"

#include <atomic>
#include <cmath>
#include <stdexcept>
#include <thread>

namespace offload::kernels {
namespace {

constexpr std::int64_t max_iterations = 1'000'000'000;

class model final : public kernel {
 public:
  explicit model(const model_spec& s)
      : m_spec(s), m_version("1-f" + std::to_string(s.features) + "-o" + std::to_string(s.outputs)) {}
  std::string_view name() const noexcept override { return m_spec.name; }
  std::string_view version() const noexcept override { return m_version; }
  std::uint64_t default_size() const noexcept override { return 1; }  // items
  std::vector<product_spec> output_specs(const product_views& in) const override {
    const auto rows = items(in);
    const auto it = scalar_input<std::int64_t>(in, "iterations");
    if (it < 0 || it > max_iterations)
      throw input_error("input 'iterations' is " + std::to_string(it) + ", outside 0.." +
                        std::to_string(max_iterations));
    return {{"scores", dtype::f32, rows * m_spec.outputs}};
  }
  std::uint64_t items(const product_views& in) const override {
    const auto x = in.get<float>("features");
    if (x.size() % m_spec.features != 0)
      throw input_error("input 'features' has " + std::to_string(x.size()) + " elements, not a multiple of " +
                        std::to_string(m_spec.features) + " (features per item of model " + m_spec.name + ")");
    return x.size() / m_spec.features;
  }
  void run_cpu(const product_views& in, message_writer& out) const override {
    const auto rows = items(in);
    const auto it = scalar_input<std::int64_t>(in, "iterations");
    if (m_spec.hold_cpu) {
      std::this_thread::sleep_for(std::chrono::nanoseconds(std::int64_t(rows) * it));
    } else {
      const auto x = in.get<float>("features");
      double sink = 0;
      for (std::uint64_t i = 0; i < rows; ++i) sink += synthetic_element(double(x[i * m_spec.features]), it);
      m_sink.store(sink, std::memory_order_relaxed);  // keeps the loop: its result is the cost, not the output
    }
    scores(in, out);
  }
  bool emulate_outputs(const product_views& in, message_writer& out) const override {
    scores(in, out);
    return true;
  }
  batch_rule batching() const override { return {true, {"iterations"}}; }
  kernel_cost cost(const product_views& in) const override {
    const double rows = double(items(in));
    return {rows * (2.0 * double(scalar_input<std::int64_t>(in, "iterations")) + double(m_spec.features)), true};
  }
  /// size: items; work: iterations per item.
  std::vector<product> make_inputs(const input_params& p) const override { return inputs<product>(p, product::zeros); }
  std::vector<pooled_product> make_inputs(const input_params& p, const product_maker& make) const override {
    return inputs<pooled_product>(p, make);
  }

 private:
  template <class P, class Make> std::vector<P> inputs(const input_params& p, const Make& make) const {
    splitmix64 rng{p.seed};
    std::vector<P> in;
    in.push_back(make("features", dtype::f32, p.size * m_spec.features));
    for (auto& v : in[0].template as<float>()) v = float(rng.uniform());
    in.push_back(make("iterations", dtype::i64, 1));
    in[1].template as<std::int64_t>()[0] = std::int64_t(p.work);
    return in;
  }
  /// Score o of item i: the logistic function of the mean of the features f with f % outputs == o.
  void scores(const product_views& in, message_writer& out) const {
    const auto x = in.get<float>("features");
    auto y = out.payload_as<float>(0);
    const std::uint32_t F = m_spec.features, O = m_spec.outputs;
    for (std::size_t i = 0; i < y.size() / O; ++i) {
      const float* row = x.data() + i * F;
      for (std::uint32_t o = 0; o < O; ++o) {
        float sum = 0;
        std::uint32_t n = 0;
        for (std::uint32_t f = o; f < F; f += O, ++n) sum += row[f];
        const float mean = n ? sum / float(n) : 0.0f;
        y[i * O + o] = 1.0f / (1.0f + std::exp(-4.0f * (mean - 0.5f)));
      }
    }
  }

  model_spec m_spec;
  std::string m_version;
  mutable std::atomic<double> m_sink{0};
};

}  // namespace
}  // namespace offload::kernels

namespace offload {

std::shared_ptr<const kernel> make_model_kernel(const model_spec& spec) {
  if (spec.features == 0 || spec.outputs == 0)
    throw std::invalid_argument("model '" + spec.name + "' needs at least one feature and one output per item");
  return std::make_shared<kernels::model>(spec);
}

}  // namespace offload
