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
//   TEST_PLUGIN_TENSORS      kernels "tensors" (the eleven dtypes KServe v2 has typed contents for)
//                            and "halves" (f16, bf16: raw only), version 1: one input per dtype,
//                            each of its own declared shape, given back reversed with its shape
#include <offload/plugin.hpp>

#include <cstring>
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

/// "tensors" and "halves": x_<dtype> in, y_<dtype> out: the same elements in reverse order, the
/// same shape.
using declared_tensors = std::vector<std::pair<offload::dtype, std::vector<std::int64_t>>>;
class tensors final : public offload::kernel {
 public:
  tensors(std::string name, declared_tensors declared) : m_name(std::move(name)), m_declared(std::move(declared)) {}
  std::string_view name() const noexcept override { return m_name; }
  std::string_view version() const noexcept override { return "1"; }
  offload::model_io io() const override {
    offload::model_io io;
    for (const auto& [t, dims] : m_declared) {
      io.inputs.push_back({"x_" + std::string(offload::dtype_name(t)), t, dims});
      io.outputs.push_back({"y_" + std::string(offload::dtype_name(t)), t, dims});
    }
    return io;
  }
  std::vector<offload::product_spec> output_specs(const offload::product_views& in) const override {
    std::vector<offload::product_spec> out;
    for (const auto& x : io().inputs) {
      const auto& p = in.at(x.name);
      if (p.type != x.type)
        throw offload::input_error("input '" + x.name + "' is " + std::string(offload::dtype_name(p.type)));
      out.push_back({"y" + x.name.substr(1), p.type, p.count, {p.dims.begin(), p.dims.end()}});
    }
    return out;
  }
  void run_cpu(const offload::product_views& in, offload::message_writer& out) const override {
    const auto inputs = io().inputs;
    for (std::size_t i = 0; i < inputs.size(); ++i) {
      const auto& p = in.at(inputs[i].name);
      const std::size_t size = offload::dtype_size(p.type);
      auto to = out.payload(i);
      for (std::uint64_t e = 0; e < p.count; ++e)
        std::memcpy(to.data() + e * size, p.data + (p.count - 1 - e) * size, size);
    }
  }
  std::vector<offload::product> make_inputs(const offload::input_params& p) const override {
    std::vector<offload::product> in;
    for (const auto& x : io().inputs) {
      std::vector<std::int64_t> dims = x.dims;  // each -1: p.size
      for (auto& d : dims) d = d < 0 ? std::int64_t(p.size) : d;
      std::uint64_t n = 1;
      for (auto d : dims) n *= std::uint64_t(d);
      auto q = offload::product::zeros(x.name, x.type, n);
      for (std::size_t b = 0; b < q.bytes.size(); ++b)  // bools 0 or 1, other types any bytes
        q.bytes[b] = std::byte(x.type == offload::dtype::boolean ? (b + p.seed) % 2 : (b * 7 + p.seed) % 251);
      if (dims.size() > 1) q.reshape(dims);
      in.push_back(std::move(q));
    }
    return in;
  }
  std::uint64_t default_size() const noexcept override { return 2; }

 private:
  std::string m_name;
  declared_tensors m_declared;
};

[[maybe_unused]] void register_kernels([[maybe_unused]] offload::kernel_registry& r) {
#if defined(TEST_PLUGIN_EMPTY)
#elif defined(TEST_PLUGIN_THROWS)
  throw std::runtime_error("the calibration file /nonexistent/weights.bin is missing");
#elif defined(TEST_PLUGIN_DUPLICATE)
  r.add(std::make_shared<affine>("echo", "1"));
#elif defined(TEST_PLUGIN_TENSORS)
  using offload::dtype;
  r.add(std::make_shared<tensors>("tensors", declared_tensors{{dtype::f32, {-1, 4}},
                                                              {dtype::f64, {-1}},
                                                              {dtype::i32, {2, -1}},
                                                              {dtype::i64, {-1, -1, -1}},
                                                              {dtype::u8, {-1}},
                                                              {dtype::boolean, {-1, 3}},
                                                              {dtype::i8, {-1, -1}},
                                                              {dtype::i16, {-1, 2, 2}},
                                                              {dtype::u16, {-1}},
                                                              {dtype::u32, {-1, -1}},
                                                              {dtype::u64, {-1, 1}}}));
  r.add(std::make_shared<tensors>("halves", declared_tensors{{dtype::f16, {-1, -1}}, {dtype::bf16, {-1, 2}}}));
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
