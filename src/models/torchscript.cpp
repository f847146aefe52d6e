// The TorchScript executor: a repository model (platform pytorch_libtorch) as a kernel. A batch
// of requests is joined along the batch dimension (join_inputs), run once and split. Built as a
// module of its own (offload_torchscript.so), loaded only when a repository has a TorchScript
// model: libtorch then costs nothing (about 140 MiB of resident memory per process) to the jobs
// that do not use it.
#include "torchscript.hpp"

#include <ATen/Parallel.h>
#include <torch/script.h>

#include <offload/log.hpp>

#include <atomic>
#include <cstring>
#include <mutex>

namespace offload::detail {

namespace {

/// libtorch's element type of a dtype; nullopt for u16, u32 and u64 (libtorch 1.13 has none).
std::optional<c10::ScalarType> scalar_of(dtype t) {
  switch (t) {
    case dtype::f32: return c10::kFloat;
    case dtype::f64: return c10::kDouble;
    case dtype::i32: return c10::kInt;
    case dtype::i64: return c10::kLong;
    case dtype::u8: return c10::kByte;
    case dtype::boolean: return c10::kBool;
    case dtype::i8: return c10::kChar;
    case dtype::i16: return c10::kShort;
    case dtype::f16: return c10::kHalf;
    case dtype::bf16: return c10::kBFloat16;
    default: return std::nullopt;
  }
}

/// The first line of a libtorch error (its messages carry a C++ backtrace after it).
std::string first_line(const std::string& s) {
  return s.substr(0, s.find('\n'));
}

/// Positions by Triton's naming convention NAME__i: for every name its i, when the names are
/// exactly 0..n-1 that way; else empty.
std::vector<std::size_t> by_index(const std::vector<tensor_spec>& specs) {
  // (no std::regex: GCC 12 at -O1 under ASan reports a false -Wmaybe-uninitialized inside it)
  std::vector<std::size_t> pos;
  std::vector<bool> seen(specs.size(), false);
  for (const auto& s : specs) {
    const auto mark = s.name.rfind("__");
    const std::string digits = mark == std::string::npos ? std::string() : s.name.substr(mark + 2);
    if (digits.empty() || digits.size() > 6 || digits.find_first_not_of("0123456789") != std::string::npos) return {};
    const auto i = std::stoul(digits);
    if (i >= specs.size() || seen[i]) return {};
    seen[i] = true;
    pos.push_back(i);
  }
  return pos;
}

class torchscript_kernel final : public kernel {
 public:
  explicit torchscript_kernel(repository_model m) : m_model(std::move(m)) {
    const auto& file = m_model.model_file;
    for (const auto* list : {&m_model.io.inputs, &m_model.io.outputs})
      for (const auto& t : *list)
        if (!scalar_of(t.type))
          fail("data_type of '" + t.name + "'", std::string(dtype_name(t.type)),
               "this libtorch has no tensors of this type (no unsigned types but u8)");
    at::set_num_threads(1);  // one thread per instance: more instances for more cores
    for (std::uint32_t i = 0; i < m_model.scheduling.instances; ++i) {
      auto s = std::make_unique<slot>();
      try {
        s->module = torch::jit::load(file.string());
      } catch (const std::exception& e) {
        throw model_repository_error(file.string() +
                                     ": not a TorchScript model libtorch can load: " + first_line(e.what()));
      }
      s->module.eval();
      m_slots.push_back(std::move(s));
    }
    bind_inputs();
    m_out_pos = by_index(m_model.io.outputs);
    if (m_out_pos.empty())
      for (std::size_t i = 0; i < m_model.io.outputs.size(); ++i) m_out_pos.push_back(i);
    try_once();
  }

  std::string_view name() const noexcept override { return m_model.name; }
  std::string_view version() const noexcept override { return m_model.version; }
  model_io io() const override { return m_model.io; }
  batch_rule batching() const override { return {m_model.io.batched, {}}; }
  std::uint64_t default_size() const noexcept override { return 4; }

  std::uint64_t items(const product_views& in) const override {
    if (!m_model.io.batched) return 1;
    const auto* p = in.find(m_model.io.inputs.front().name);
    return p == nullptr ? 1 : std::uint64_t(std::max<std::int64_t>(rows_of(*p, m_model.io.inputs.front()), 1));
  }

  std::vector<product_spec> output_specs(const product_views& in) const override {
    const std::int64_t rows = check_inputs(in);
    std::vector<product_spec> out;
    for (const auto& o : m_model.io.outputs) {
      dims_t dims = o.dims;
      if (m_model.io.batched) dims[0] = rows;
      out.push_back({o.name, o.type, *shape_elements(dims), dims});
    }
    return out;
  }

  void run_cpu(const product_views& in, message_writer& out) const override {
    const std::int64_t rows = check_inputs(in);
    std::vector<torch::jit::IValue> args(m_in_pos.size());
    for (std::size_t i = 0; i < m_model.io.inputs.size(); ++i) {
      const auto& spec = m_model.io.inputs[i];
      const auto& p = in.at(spec.name);
      dims_t shape = concrete(p, spec, rows);
      auto t = torch::from_blob(const_cast<std::byte*>(p.data), shape, *scalar_of(spec.type));
      if (auto r = m_model.reshape.find(spec.name); r != m_model.reshape.end()) {
        dims_t to = r->second;
        if (m_model.io.batched) to.insert(to.begin(), rows);
        t = t.reshape(to);
      }
      args[m_in_pos[i]] = t;
    }
    torch::jit::IValue result;
    {
      torch::InferenceMode guard;
      auto lock = acquire();
      result = m_slots[lock.second]->module.forward(args);
    }
    std::vector<at::Tensor> got;
    if (result.isTensor()) {
      got.push_back(result.toTensor());
    } else if (result.isTuple()) {
      for (const auto& e : result.toTuple()->elements()) got.push_back(e.isTensor() ? e.toTensor() : at::Tensor());
    } else if (result.isTensorList()) {
      for (const auto& t : result.toTensorVector()) got.push_back(t);
    }
    if (got.size() != m_model.io.outputs.size())
      throw output_error("model '" + m_model.name + "' gave " + std::to_string(got.size()) +
                         " tensor(s), its configuration declares " + std::to_string(m_model.io.outputs.size()) +
                         " output(s)");
    for (std::size_t j = 0; j < m_model.io.outputs.size(); ++j) {
      const auto& spec = out.spec(j);
      at::Tensor t = got[m_out_pos[j]];
      if (!t.defined() || t.scalar_type() != *scalar_of(spec.type))
        throw output_error("model '" + m_model.name + "' output '" + spec.name + "' is " +
                           (t.defined() ? std::string(c10::toString(t.scalar_type())) : std::string("no tensor")) +
                           ", its configuration says " + std::string(dtype_name(spec.type)));
      t = t.contiguous();
      if (std::uint64_t(t.numel()) != spec.count)
        throw output_error("model '" + m_model.name + "' output '" + spec.name + "' has shape " +
                           shape_text(t.sizes().vec()) + ", its configuration says " + shape_text(spec.dims));
      auto to = out.payload(j);
      if (!to.empty()) std::memcpy(to.data(), t.data_ptr(), to.size());
    }
  }

  /// One run for the whole batch: the requests joined along the batch dimension, then split.
  void run_cpu_batch(std::span<const product_views* const> ins, std::span<message_writer* const> outs) const override {
    if (ins.size() > 1)
      if (auto joined = join_inputs(*this, ins)) {
        const product_views in(*joined);
        const auto specs = output_specs(in);
        message_writer out(message_info{}, specs);
        run_cpu(in, out);
        split_outputs(std::move(out).finish_message().products(), outs);
        return;
      }
    for (std::size_t i = 0; i < ins.size(); ++i) run_cpu(*ins[i], *outs[i]);
  }

  /// size: rows of a batched model (1 otherwise); any other -1 dim: 2. Values in [-1, 1) for
  /// floats, 0..9 for integers, alternating booleans.
  std::vector<product> make_inputs(const input_params& params) const override {
    std::uint64_t state = params.seed;
    auto next = [&state] {
      std::uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
      z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
      z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
      return z ^ (z >> 31);
    };
    std::vector<product> in;
    for (const auto& spec : m_model.io.inputs) {
      dims_t dims = spec.dims;
      for (std::size_t d = 0; d < dims.size(); ++d)
        if (dims[d] < 0)
          dims[d] = d == 0 && m_model.io.batched ? std::int64_t(std::max<std::uint64_t>(params.size, 1)) : 2;
      auto p = product::zeros(spec.name, spec.type, *shape_elements(dims));
      auto t = torch::from_blob(p.bytes.data(), dims, *scalar_of(spec.type));
      const auto n = std::int64_t(p.count);
      auto values = torch::empty({n}, torch::kDouble);
      auto* v = values.data_ptr<double>();
      for (std::int64_t i = 0; i < n; ++i) {
        const double u = double(next() >> 11) * 0x1.0p-53;
        v[i] = is_floating(spec.type) ? 2 * u - 1 : spec.type == dtype::boolean ? double(i % 2) : double(next() % 10);
      }
      t.view({n}).copy_(values);
      if (dims.size() > 1) p.reshape(dims);
      in.push_back(std::move(p));
    }
    return in;
  }

 private:
  struct slot {
    std::mutex mutex;
    torch::jit::Module module;
  };

  [[noreturn]] void fail(const std::string& field, const std::string& value, const std::string& why) const {
    throw model_repository_error(m_model.config_file.string() + ": " + field + " (" + value + "): " + why);
  }

  /// Which argument of forward() each input is: Triton's INPUT__i convention, else forward()'s
  /// argument names, else the configuration's order.
  void bind_inputs() {
    m_in_pos = by_index(m_model.io.inputs);
    if (!m_in_pos.empty()) return;
    const auto& args = m_slots.front()->module.get_method("forward").function().getSchema().arguments();
    std::vector<std::string> names;
    for (std::size_t a = 1; a < args.size(); ++a) names.push_back(args[a].name());  // (args[0] is self)
    if (names.size() != m_model.io.inputs.size())
      fail("input", std::to_string(m_model.io.inputs.size()) + " inputs",
           "the model's forward() takes " + std::to_string(names.size()) + " argument(s)");
    for (const auto& spec : m_model.io.inputs) {
      const auto it = std::find(names.begin(), names.end(), spec.name);
      if (it == names.end()) {
        m_in_pos.clear();
        for (std::size_t i = 0; i < m_model.io.inputs.size(); ++i) m_in_pos.push_back(i);
        logger()->info("{}: inputs bound to forward() in the configuration's order", m_model.config_file.string());
        return;
      }
      m_in_pos.push_back(std::size_t(it - names.begin()));
    }
  }

  /// A run at load on zero inputs (one row; any other -1 dim: 1): the model must give the
  /// configuration's outputs, dtypes and sizes.
  void try_once() {
    std::vector<product> in;
    for (const auto& spec : m_model.io.inputs) {
      dims_t dims = spec.dims;
      for (auto& d : dims) d = d < 0 ? 1 : d;
      auto p = product::zeros(spec.name, spec.type, *shape_elements(dims));
      if (dims.size() > 1) p.reshape(dims);
      in.push_back(std::move(p));
    }
    const product_views views(in);
    const auto specs = output_specs(views);
    message_writer out(message_info{}, specs);
    try {
      run_cpu(views, out);
    } catch (const std::exception& e) {
      throw model_repository_error(m_model.model_file.string() + ": a trial run on zeros against " +
                                   m_model.config_file.filename().string() + " failed: " + first_line(e.what()));
    }
  }

  /// The rows of `p` for input `spec` of a batched model: its first dim, or for a flat product,
  /// its count over the other dims' product.
  std::int64_t rows_of(const product_view& p, const tensor_spec& spec) const {
    if (!p.dims.empty()) return p.dims[0];
    std::int64_t rest = 1;
    for (std::size_t d = 1; d < spec.dims.size(); ++d) rest *= spec.dims[d] < 0 ? 1 : spec.dims[d];
    return rest > 0 ? std::int64_t(p.count) / rest : 0;
  }

  /// The shape `p` runs with: its own, or for a flat product the declared one with the rows
  /// (and one remaining -1 from the count).
  dims_t concrete(const product_view& p, const tensor_spec& spec, std::int64_t rows) const {
    if (!p.dims.empty()) return dims_t(p.dims.begin(), p.dims.end());
    dims_t dims = spec.dims;
    if (m_model.io.batched) dims[0] = rows;
    std::int64_t known = 1;
    std::size_t unknown = dims.size();
    for (std::size_t d = 0; d < dims.size(); ++d)
      if (dims[d] < 0)
        unknown = d;
      else
        known *= dims[d];
    if (unknown < dims.size()) dims[unknown] = known > 0 ? std::int64_t(p.count) / known : 0;
    return dims;
  }

  /// Checks every declared input (present, dtype, shape, rows ≤ max_batch_size): the rows of a
  /// batched model, else 0; input_error naming the input otherwise.
  std::int64_t check_inputs(const product_views& in) const {
    const std::string model = "model '" + m_model.name + "'";
    if (in.size() != m_model.io.inputs.size())
      throw input_error(model + " takes " + std::to_string(m_model.io.inputs.size()) + " inputs, got " +
                        std::to_string(in.size()));
    std::int64_t rows = -1;
    for (const auto& spec : m_model.io.inputs) {
      const auto& p = in.at(spec.name);
      if (p.type != spec.type)
        throw input_error(model + ": input '" + spec.name + "' is " + std::string(dtype_name(p.type)) +
                          ", the model takes " + std::string(dtype_name(spec.type)));
      const std::int64_t r = m_model.io.batched ? rows_of(p, spec) : 0;
      const dims_t got = concrete(p, spec, r);
      bool fits = got.size() == spec.dims.size() && shape_elements(got) == p.count;
      for (std::size_t d = 0; fits && d < got.size(); ++d) fits = spec.dims[d] < 0 || spec.dims[d] == got[d];
      if (!fits)
        throw input_error(model + ": input '" + spec.name + "' has shape " + shape_text(p.shape()) +
                          ", the model takes " + shape_text(spec.dims));
      if (m_model.io.batched) {
        if (rows >= 0 && r != rows)
          throw input_error(model + ": input '" + spec.name + "' has " + std::to_string(r) + " rows, another " +
                            std::to_string(rows));
        if (r > m_model.max_batch_size)
          throw input_error(model + ": input '" + spec.name + "' has " + std::to_string(r) +
                            " rows, over its max_batch_size of " + std::to_string(m_model.max_batch_size));
        rows = r;
      }
    }
    return rows < 0 ? 0 : rows;
  }

  /// A free instance of the model, locked (the first one's when all are busy).
  std::pair<std::unique_lock<std::mutex>, std::size_t> acquire() const {
    for (std::size_t i = 0; i < m_slots.size(); ++i) {
      std::unique_lock lock(m_slots[i]->mutex, std::try_to_lock);
      if (lock.owns_lock()) return {std::move(lock), i};
    }
    const std::size_t i = m_next++ % m_slots.size();
    return {std::unique_lock(m_slots[i]->mutex), i};
  }

  repository_model m_model;
  std::vector<std::unique_ptr<slot> > m_slots;
  std::vector<std::size_t> m_in_pos, m_out_pos;  // per declared input/output: its position in forward()
  mutable std::atomic<std::size_t> m_next{0};
};

}  // namespace

}  // namespace offload::detail

/// The module's entry point (src/models/torchscript.hpp): the kernel for `m` in `out`, or
/// model_repository_error.
extern "C" __attribute__((visibility("default"))) void offload_torchscript_kernel(
    const offload::repository_model& m, std::shared_ptr<const offload::kernel>& out) {
  out = std::make_shared<offload::detail::torchscript_kernel>(m);
}
