#pragma once
/// \file
/// Kernels: the work a receiver runs for a request, looked up by name in a registry. Every
/// kernel has a CPU implementation (the reference, and the transmitter's fallback) and may have
/// a CUDA one. The library's own kernels (clustering, echo, mlp, synthetic) are written with
/// this API like any user's. Kernels know nothing of MPI.

#include <offload/product.hpp>
#include <offload/wire.hpp>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

struct CUstream_st;  // CUDA's stream: cudaStream_t is CUstream_st*

namespace offload {

/// Parameters for generating deterministic example inputs of a kernel.
struct input_params {
  std::uint64_t seed = 1;  ///< all values derive from this
  std::uint64_t size = 0;  ///< kernel-specific scale: elements, jets, grid side (see each kernel)
  std::uint64_t work = 0;  ///< kernel-specific cost knob (synthetic: iterations per element)
};

/// Makes a product's storage: `count` elements of `type`, uninitialised (make_inputs' second
/// form; offload-run passes transmitter::make_product, so inputs are written into pooled memory).
using product_maker = std::function<pooled_product(std::string name, dtype type, std::uint64_t count)>;

/// How requests of a kernel can be joined into one launch.
struct batch_rule {
  /// True when running the kernel on the concatenation of several requests' inputs gives the
  /// concatenation of their outputs (row-wise kernels: echo, synthetic, mlp).
  bool joinable = false;
  /// Inputs that are parameters, not rows: they must be equal across the joined requests and
  /// are passed once (synthetic's "iterations").
  std::vector<std::string> params;
};

/// A tensor as model servers describe one (KServe v2, Triton): a product's name, dtype and
/// shape, row-major; its count is the product of its dims.
struct tensor_spec {
  std::string name;
  dtype type = dtype::u8;
  std::vector<std::int64_t> dims;  ///< -1: a dimension of any size
};

/// A kernel seen as a model: its inputs and outputs, in order, as the KServe v2 front end serves
/// and checks them (docs/transports.md, "KServe v2").
struct model_io {
  std::vector<tensor_spec> inputs;
  std::vector<tensor_spec> outputs;
  /// The first dimension of every input and output counts rows (jets, events), -1 in `dims`:
  /// a request of n rows gives n rows out, and requests may be joined along it (Triton's
  /// max_batch_size > 0, whose model configuration lists dims without it).
  bool batched = false;
  /// For a batched model: the most rows one request may carry (Triton's max_batch_size); 0: as
  /// many as fit the receiver's message limit.
  std::int64_t max_batch_size = 0;
};

/// The arithmetic of one run, for roofline comparisons (offload-kernel-bench).
struct kernel_cost {
  double flops = 0;   ///< floating-point operations (0: none stated, or negligible)
  bool fp64 = false;  ///< whether they are FP64 (else FP32)
};

/// A product in device memory, as a CUDA implementation sees it.
struct device_product {
  void* data;           ///< device pointer (256-byte aligned)
  std::uint64_t count;  ///< elements, as in the host product
};

/// One launch of a kernel's CUDA implementation. The library has copied the inputs to the
/// device, laid out the outputs from output_specs(host_in), and copies them back after launch
/// returns and the stream's work is done. `host_in` is the same inputs in host memory (for
/// sizes and scalar parameters).
struct cuda_launch {
  const product_views& host_in;
  std::span<const device_product> in;   ///< in the order of host_in
  std::span<const device_product> out;  ///< in the order of output_specs(host_in)
  std::byte* scratch;                   ///< scratch_bytes(host_in) bytes of device memory
  CUstream_st* stream;                  ///< the cudaStream_t to launch on (offload/cuda.hpp: stream_of)
  int device;                           ///< the current device

  /// The device copy of the input called `name` (requests may order their products freely).
  /// Throws input_error when there is none.
  const device_product& input(std::string_view name) const;
};

/// A kernel's CUDA implementation (written in a .cu file; offload/cuda.hpp has the helpers).
/// Stateless and thread-safe: several threads launch on their own streams at once.
class cuda_implementation {
 public:
  virtual ~cuda_implementation() = default;
  /// Device scratch memory one launch needs (default none).
  virtual std::size_t scratch_bytes(const product_views& host_in) const;
  /// Enqueues the work on `call.stream` and writes every output element. It may synchronise
  /// that stream (to read a flag back), never the device; it allocates nothing per launch.
  /// Throws (e.g. OFFLOAD_CUDA_CHECK) when CUDA reports an error.
  virtual void launch(const cuda_launch& call) const = 0;
};

/// One kernel: what a receiver runs for a request, and a transmitter's local fallback.
/// Implementations are stateless and thread-safe: one instance serves all threads.
/// docs/writing-kernels.md shows how to write one.
class kernel {
 public:
  virtual ~kernel() = default;
  /// Unique in a registry: printable ASCII, no spaces or '@'.
  virtual std::string_view name() const noexcept = 0;
  /// Changes whenever the kernel's inputs, outputs or results change: the start-up handshake
  /// refuses a peer whose kernel of the same name has another version. Printable ASCII, no
  /// spaces or '@' (e.g. "1", "2.1").
  virtual std::string_view version() const noexcept = 0;
  /// Checks names, dtypes and shapes of `in` and returns the outputs the kernel will write.
  /// Throws input_error saying which input is wrong and how.
  virtual std::vector<product_spec> output_specs(const product_views& in) const = 0;
  /// Runs on the calling thread; `out` was laid out from `output_specs(in)`; every output
  /// element is written.
  virtual void run_cpu(const product_views& in, message_writer& out) const = 0;
  /// Runs several requests as one task: `outs[i]` laid out from `output_specs(*ins[i])`.
  /// The default runs them one after the other; results equal those of run_cpu.
  virtual void run_cpu_batch(std::span<const product_views* const> ins, std::span<message_writer* const> outs) const;
  /// Whether and how requests can be joined (default: not joinable). The CPU backend calls
  /// run_cpu_batch; the CUDA backend launches once over the joined inputs.
  virtual batch_rule batching() const { return {}; }
  /// Deterministic example inputs (the same params give the same bytes everywhere).
  virtual std::vector<product> make_inputs(const input_params& params) const = 0;
  /// The same inputs, each written into storage from `make` (e.g. a transmitter's pool). The
  /// default copies make_inputs(params)'s products; the built-in kernels write in place.
  virtual std::vector<pooled_product> make_inputs(const input_params& params, const product_maker& make) const;
  /// The input_params::size of a typical request (what offload-run uses without --size).
  virtual std::uint64_t default_size() const noexcept = 0;
  /// The floating-point work of one run on `in` (valid inputs); default: none stated.
  virtual kernel_cost cost(const product_views& in) const;
  /// The CUDA implementation, or nullptr when the kernel has none (the default): the CUDA
  /// backend then runs it on the CPU.
  virtual const cuda_implementation* cuda() const noexcept { return nullptr; }
  /// How many inferences (rows) one request on `in` (valid inputs) holds: what a device
  /// profile's batch size counts (offload/device_profile.hpp). Default 1: a request is one item.
  virtual std::uint64_t items(const product_views& in) const;
  /// Writes exactly what run_cpu writes, without run_cpu's cost, where the kernel can (e.g. a
  /// model stand-in whose cost is a separate calibrated loop); the emulated device backend uses
  /// it, so that emulated runs give the same outputs as real ones. Returns false (the default)
  /// when the kernel has no such path: the emulated backend then runs run_cpu.
  virtual bool emulate_outputs(const product_views& in, message_writer& out) const;
  /// Outputs this kernel can compute over its inputs' bytes, for inputs `in` (valid): pairs
  /// {output index, input index}, each index at most once, the two of equal size in bytes. A
  /// receiver then gives the kernel the input's own bytes, in the request's buffer, as that
  /// output's payload (`out.payload(o)` is `in[i]`'s memory: read an element before writing
  /// it) and replies from there without copying it. Default: none. run_cpu must give the same
  /// outputs with separate buffers (the transmitter's fallback never writes over inputs).
  virtual std::vector<std::pair<std::size_t, std::size_t>> in_place(const product_views& in) const;
  /// For a kernel cheap enough to run on a receiver's progress thread, saving two thread
  /// hand-offs per request: a bound on run_cpu's time per input byte, in nanoseconds. A CPU
  /// receiver runs a request inline when this bound times its bytes fits its inline budget
  /// (receiver_config::inline_budget); a kernel that once takes far longer inline is moved to
  /// the kernel threads for good. 0 (the default): never inline.
  virtual double cheap_ns_per_byte() const noexcept { return 0; }
  /// The kernel's inputs and outputs as a model (names, dtypes, shapes). Empty, the default,
  /// for a kernel that declares none: it still serves transmitters, but the KServe v2 front end
  /// does not offer it (it could not check a client's tensors or give their shapes).
  virtual model_io io() const { return {}; }
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
/// the next `count` elements of each product, as its layout says. Throws output_error when
/// the joined outputs do not add up to what the writers expect (the kernel broke its specs).
void split_outputs(const product_views& joined, std::span<message_writer* const> outs);

/// A set of kernels, ordered by name; a kernel's id is its index. Two ranks agree on ids
/// exactly when their `signature()`s are equal (checked in the start-up handshake). Build one
/// from the built-ins, your own kernels and plugins (offload/plugin.hpp):
///
///     offload::kernel_registry kernels = offload::kernel_registry::builtin();
///     kernels.add(my_kernel);  // a kernel that outlives the registry, e.g. a static object
class kernel_registry {
 public:
  kernel_registry() = default;

  /// Every kernel the library has: clustering, echo, mlp, synthetic.
  static const kernel_registry& builtin();

  /// Adds `k`, sharing its ownership. `origin` names where it came from in error messages
  /// (a plugin's path, "built in"). Throws std::invalid_argument when the name or version is
  /// not printable ASCII without spaces and '@', or when a kernel of that name is already
  /// here (naming both origins).
  kernel_registry& add(std::shared_ptr<const kernel> k, std::string origin = "the application");
  /// Adds `k`, which the caller keeps alive as long as the registry (e.g. a static object).
  kernel_registry& add(const kernel& k, std::string origin = "the application");
  /// Adds every kernel of `other`, with its origin, or with `origin` when that is not empty.
  kernel_registry& add(const kernel_registry& other, const std::string& origin = {});

  /// The kernels named in `names` (any order, no repeats); throws std::invalid_argument
  /// naming an unknown kernel.
  kernel_registry subset(const std::vector<std::string>& names) const;

  const kernel* find(std::string_view name) const noexcept;
  const kernel* by_id(std::uint32_t id) const noexcept;
  std::optional<std::uint32_t> id_of(std::string_view name) const noexcept;
  /// Where the kernel called `name` came from (see add); empty when there is none.
  std::string origin(std::string_view name) const;
  std::size_t size() const noexcept { return m_entries.size(); }
  std::vector<std::string> names() const;
  /// "name@version", one per line: what the handshake compares.
  std::string signature() const;

 private:
  struct entry {
    std::shared_ptr<const kernel> k;
    std::string origin;
  };
  std::vector<entry> m_entries;  // sorted by name
};

}  // namespace offload
