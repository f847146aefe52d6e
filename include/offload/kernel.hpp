#pragma once
/// \file
/// Kernels: the work a receiver runs for a request, looked up by name in a registry. Every
/// kernel has a CPU implementation (the reference, and the transmitter's fallback); the CUDA
/// implementations live beside them in kernels/cuda/. Kernels know nothing of MPI.

#include <offload/product.hpp>
#include <offload/wire.hpp>

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace offload {

/// Parameters for generating deterministic example inputs of a kernel.
struct input_params {
  std::uint64_t seed = 1;  ///< all values derive from this
  std::uint64_t size = 0;  ///< kernel-specific scale: elements, jets, grid side (see each kernel)
  std::uint64_t work = 0;  ///< kernel-specific cost knob (synthetic: iterations per element)
};

/// How requests of a kernel can be joined into one launch.
struct batch_rule {
  /// True when running the kernel on the concatenation of several requests' inputs gives the
  /// concatenation of their outputs (row-wise kernels: echo, synthetic, mlp).
  bool joinable = false;
  /// Inputs that are parameters, not rows: they must be equal across the joined requests and
  /// are passed once (synthetic's "iterations").
  std::vector<std::string> params;
};

/// One kernel. Implementations are stateless and thread-safe: one instance serves all threads.
class kernel {
 public:
  virtual ~kernel() = default;
  virtual std::string_view name() const noexcept = 0;
  /// Checks names, dtypes and shapes of `in` and returns the outputs the kernel will write.
  /// Throws input_error saying which input is wrong and how.
  virtual std::vector<product_spec> output_specs(const product_views& in) const = 0;
  /// Runs on the calling thread; `out` was laid out from `output_specs(in)`; every output
  /// element is written.
  virtual void run_cpu(const product_views& in, message_writer& out) const = 0;
  /// Runs several requests as one task: `outs[i]` laid out from `output_specs(*ins[i])`.
  /// The default runs them one after the other; results equal those of run_cpu.
  virtual void run_cpu_batch(std::span<const product_views* const> ins, std::span<message_writer* const> outs) const;
  /// Whether and how requests can be joined (default: not joinable).
  virtual batch_rule batching() const { return {}; }
  /// Deterministic example inputs (the same params give the same bytes everywhere).
  virtual std::vector<product> make_inputs(const input_params& params) const = 0;
};

/// Runs `k` on the CPU and returns the finished message (header from `info`), its storage
/// from `allocate(bytes)` when given (e.g. a pool). Throws input_error for bad inputs.
message run_cpu(const kernel& k, const product_views& in, const message_info& info,
                const std::function<buffer(std::size_t)>& allocate = {});

/// Checks `outputs` against what `k`'s CPU implementation makes from `inputs` (see
/// compare_products for the tolerances). Empty when they agree, else the first difference.
std::string compare_with_cpu(const kernel& k, const product_views& inputs, const product_views& outputs,
                             double rel_tolerance = 0.0, double abs_tolerance = 0.0);

/// The inputs of several requests joined into one (see batch_rule): each product concatenated
/// in request order, parameters once. nullopt when `k` is not joinable or the requests do not
/// match (different product names or dtypes, or different parameter values). Copies the bytes.
std::optional<std::vector<product>> join_inputs(const kernel& k, std::span<const product_views* const> ins);

/// Splits the outputs of a joined run back into the requests' writers, in order: writer i gets
/// the next `count` elements of each product, as its layout says. Throws std::length_error when
/// the joined outputs do not add up to what the writers expect.
void split_outputs(const product_views& joined, std::span<message_writer* const> outs);

/// A set of kernels, ordered by name; a kernel's id is its index. Two ranks agree on ids
/// exactly when their `signature()`s are equal (checked in the start-up handshake).
class kernel_registry {
 public:
  /// Every kernel this build has: clustering, echo, mlp, synthetic.
  static const kernel_registry& builtin();

  /// The kernels named in `names` (any order, no repeats); throws std::invalid_argument
  /// naming an unknown kernel.
  kernel_registry subset(const std::vector<std::string>& names) const;

  const kernel* find(std::string_view name) const noexcept;
  const kernel* by_id(std::uint32_t id) const noexcept;
  std::optional<std::uint32_t> id_of(std::string_view name) const noexcept;
  std::size_t size() const noexcept { return m_kernels.size(); }
  std::vector<std::string> names() const;
  /// The names, one per line: what the handshake compares.
  std::string signature() const;

 private:
  explicit kernel_registry(std::vector<const kernel*> kernels);
  std::vector<const kernel*> m_kernels;
};

}  // namespace offload
