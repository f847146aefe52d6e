// echo: returns its inputs unchanged — pure transport.
#include "builtin.hpp"

#include <cstring>

namespace offload::kernels {
namespace {

class echo final : public kernel {
 public:
  std::string_view name() const noexcept override { return "echo"; }
  std::string_view version() const noexcept override { return "1"; }
  std::uint64_t default_size() const noexcept override { return 65536; }  // bytes
  std::vector<product_spec> output_specs(const product_views& in) const override {
    std::vector<product_spec> out;
    for (const auto& p : in) out.push_back(p.spec());
    return out;
  }
  void run_cpu(const product_views& in, message_writer& out) const override {
    for (std::size_t i = 0; i < in.size(); ++i) {
      auto to = out.payload(i);
      if (in[i].size_bytes() > 0 && to.data() != in[i].data) std::memcpy(to.data(), in[i].data, in[i].size_bytes());
    }
  }
  /// Every output is its input: a receiver replies from the request's buffer.
  std::vector<std::pair<std::size_t, std::size_t>> in_place(const product_views& in) const override {
    std::vector<std::pair<std::size_t, std::size_t>> pairs;
    for (std::size_t i = 0; i < in.size(); ++i) pairs.emplace_back(i, i);
    return pairs;
  }
  /// A memcpy at most (none in place): 0.25 ns a byte is 4 GB/s, a slow copy.
  double cheap_ns_per_byte() const noexcept override { return 0.25; }
  /// As a model: one u8 tensor "payload" of any length, given back (over transmitters echo
  /// returns every product it gets, whatever their names).
  model_io io() const override { return {{{"payload", dtype::u8, {-1}}}, {{"payload", dtype::u8, {-1}}}, false}; }
  batch_rule batching() const override { return {true, {}}; }
  /// size: bytes of the u8 product "payload".
  std::vector<product> make_inputs(const input_params& p) const override { return inputs<product>(p, product::zeros); }
  std::vector<pooled_product> make_inputs(const input_params& p, const product_maker& make) const override {
    return inputs<pooled_product>(p, make);
  }

 private:
  template <class P, class Make> static std::vector<P> inputs(const input_params& p, const Make& make) {
    splitmix64 rng{p.seed};
    std::vector<P> in;
    in.push_back(make("payload", dtype::u8, p.size));
    for (auto& b : in[0].template as<std::uint8_t>()) b = static_cast<std::uint8_t>(rng.next());
    return in;
  }
};

}  // namespace

const kernel& echo_kernel() {
  static const echo k;
  return k;
}

}  // namespace offload::kernels
