// synthetic: an arithmetic loop per element whose length sets the work per event.
#include "builtin.hpp"

namespace offload::kernels {
namespace {

constexpr std::int64_t max_iterations = 1'000'000'000;

class synthetic final : public kernel {
 public:
  std::string_view name() const noexcept override { return "synthetic"; }
  std::string_view version() const noexcept override { return "1"; }
  std::uint64_t default_size() const noexcept override { return 4096; }  // elements
  std::vector<product_spec> output_specs(const product_views& in) const override {
    auto x = in.get<double>("x");
    auto it = scalar_input<std::int64_t>(in, "iterations");
    if (it < 0 || it > max_iterations)
      throw input_error("input 'iterations' is " + std::to_string(it) + ", outside 0.." +
                        std::to_string(max_iterations));
    return {{"y", dtype::f64, x.size()}};
  }
  void run_cpu(const product_views& in, message_writer& out) const override {
    auto x = in.get<double>("x");
    auto it = scalar_input<std::int64_t>(in, "iterations");
    auto y = out.payload_as<double>(0);
    for (std::size_t i = 0; i < x.size(); ++i) y[i] = synthetic_element(x[i], it);
  }
  batch_rule batching() const override { return {true, {"iterations"}}; }
  model_io io() const override {
    return {{{"x", dtype::f64, {-1}}, {"iterations", dtype::i64, {1}}}, {{"y", dtype::f64, {-1}}}, false};
  }
  /// Element-wise: y[i] may be written over x[i] (it is read first).
  std::vector<std::pair<std::size_t, std::size_t>> in_place(const product_views& in) const override {
    for (std::size_t i = 0; i < in.size(); ++i)
      if (in[i].name == "x") return {{0, i}};
    return {};
  }
  /// One add and one multiply per iteration and element.
  kernel_cost cost(const product_views& in) const override {
    return {2.0 * double(scalar_input<std::int64_t>(in, "iterations")) * double(in.at("x").count), true};
  }
  /// size: elements of "x"; work: iterations per element.
  std::vector<product> make_inputs(const input_params& p) const override { return inputs<product>(p, product::zeros); }
  std::vector<pooled_product> make_inputs(const input_params& p, const product_maker& make) const override {
    return inputs<pooled_product>(p, make);
  }

 private:
  template <class P, class Make> static std::vector<P> inputs(const input_params& p, const Make& make) {
    splitmix64 rng{p.seed};
    std::vector<P> in;
    in.push_back(make("x", dtype::f64, p.size));
    for (auto& v : in[0].template as<double>()) v = rng.uniform();
    in.push_back(make("iterations", dtype::i64, 1));
    in[1].template as<std::int64_t>()[0] = std::int64_t(p.work);
    return in;
  }
};

}  // namespace

const kernel& synthetic_kernel() {
  static const synthetic k;
  return k;
}

}  // namespace offload::kernels
