// Kernel plugins for the tests, one source built several ways (tests/CMakeLists.txt):
//   TEST_PLUGIN_GOOD         kernel "affine" version 1: y = 2x + 1 (f64), joinable
//   TEST_PLUGIN_VERSION2     the same kernel as version 2 (a handshake mismatch)
//   TEST_PLUGIN_API_999      claims plugin API version 999
//   TEST_PLUGIN_NO_ENTRY     defines no entry point
//   TEST_PLUGIN_THROWS       its registration throws
//   TEST_PLUGIN_DUPLICATE    registers a kernel called "echo" (a built-in's name)
//   TEST_PLUGIN_EMPTY        registers no kernel
//   TEST_PLUGIN_BAD_OUTPUT   "affine" version 1 that writes its f64 output as f32 (breaks its own specs)
//   TEST_PLUGIN_OTHER_OUTPUTS "affine" version 1 that declares and writes y as f32 (differs from the
//                            good plugin's under the same version)
#include <offload/plugin.hpp>

#include <memory>

namespace {

class affine final : public offload::kernel {
 public:
  explicit affine(std::string name, std::string version) : m_name(std::move(name)), m_version(std::move(version)) {}
  std::string_view name() const noexcept override { return m_name; }
  std::string_view version() const noexcept override { return m_version; }
#if defined(TEST_PLUGIN_OTHER_OUTPUTS) || defined(TEST_PLUGIN_BAD_OUTPUT)
  using y_type = float;
#else
  using y_type = double;
#endif
  std::vector<offload::product_spec> output_specs(const offload::product_views& in) const override {
#if defined(TEST_PLUGIN_OTHER_OUTPUTS)
    return {{ "y", offload::dtype::f32, in.get<double>("x").size() }};
#else
    return {{ "y", offload::dtype::f64, in.get<double>("x").size() }};
#endif
  }
  void run_cpu(const offload::product_views& in, offload::message_writer& out) const override {
    auto x = in.get<double>("x");
    auto y = out.payload_as<y_type>(0);
    for (std::size_t i = 0; i < x.size(); ++i) y[i] = y_type(2 * x[i] + 1);
  }
  offload::batch_rule batching() const override {
    return {true, {}};
  }
  std::vector<offload::product> make_inputs(const offload::input_params& p) const override {
    std::vector<double> x(p.size);
    for (std::size_t i = 0; i < x.size(); ++i) x[i] = double(p.seed % 1000) + 0.5 * double(i);
    return {offload::product::make("x", x)};
  }
  std::uint64_t default_size() const noexcept override {
    return 1000;
  }

 private:
  std::string m_name, m_version;
};

[[maybe_unused]] void register_kernels([[maybe_unused]] offload::kernel_registry& r) {
#if defined(TEST_PLUGIN_EMPTY)
#elif defined(TEST_PLUGIN_THROWS)
  throw std::runtime_error("the calibration file /nonexistent/weights.bin is missing");
#elif defined(TEST_PLUGIN_DUPLICATE)
  r.add(std::make_shared<affine>("echo", "1"));
#elif defined(TEST_PLUGIN_VERSION2)
  r.add(std::make_shared<affine>("affine", "2"));
#else
  r.add(std::make_shared<affine>("affine", "1"));
#endif
}

}  // namespace

#if defined(TEST_PLUGIN_API_999)
#undef OFFLOAD_PLUGIN_API_VERSION
#define OFFLOAD_PLUGIN_API_VERSION 999
#endif
#if !defined(TEST_PLUGIN_NO_ENTRY)
OFFLOAD_PLUGIN(register_kernels)
#endif
