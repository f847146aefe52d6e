#include "backend.hpp"

#include <stdexcept>

#ifdef OFFLOAD_WITH_CUDA
#include "kernels/cuda/cuda_kernels.hpp"
#endif

namespace offload::detail {
namespace {

/// Runs each kernel's CPU implementation on the calling (worker) thread, writing the
/// outputs straight into the pooled reply buffers.
class cpu_backend final : public backend {
 public:
  std::string_view name() const noexcept override { return "cpu"; }
  bool on_cpu() const noexcept override { return true; }
  void run(const kernel& k, std::span<const product_views* const> ins, std::span<message_writer* const> outs) override {
    k.run_cpu_batch(ins, outs);
  }
};

#ifdef OFFLOAD_WITH_CUDA
/// Runs each kernel's CUDA implementation, synchronously, on the current device. A batch of a
/// joinable kernel is one launch over the joined inputs, split back per request; other
/// batches are one launch per request. A kernel without a CUDA implementation runs on the CPU.
class cuda_backend final : public backend {
 public:
  explicit cuda_backend(int device) : m_device(device), m_report(kernels::cuda::device_report(device)) {}
  std::string_view name() const noexcept override { return "cuda"; }
  std::string description() const override { return "cuda " + m_report; }
  std::shared_ptr<host_pool::pinner> host_pinner() const override { return kernels::cuda::host_pinner(); }
  void run(const kernel& k, std::span<const product_views* const> ins, std::span<message_writer* const> outs) override {
    if (kernels::cuda::implementation(k) == nullptr) {
      k.run_cpu_batch(ins, outs);
      return;
    }
    kernels::cuda::use_device(m_device);  // the current device is per thread
    if (ins.size() > 1) {
      if (auto joined = join_inputs(k, ins)) {
        const product_views in(*joined);
        auto specs = k.output_specs(in);
        message_writer out(message_info{}, specs);
        kernels::cuda::run(k, in, out);
        split_outputs(std::move(out).finish_message().products(), outs);
        return;
      }
    }
    for (std::size_t i = 0; i < ins.size(); ++i) kernels::cuda::run(k, *ins[i], *outs[i]);
  }

 private:
  int m_device;
  std::string m_report;
};
#endif

}  // namespace

std::unique_ptr<backend> make_backend(backend_kind kind, int device, int local_rank, std::string& note) {
  if (kind == backend_kind::cpu) return std::make_unique<cpu_backend>();
  if (kind == backend_kind::cuda || kind == backend_kind::automatic) {
#ifdef OFFLOAD_WITH_CUDA
    std::string why;
    if (kernels::cuda::device_available(why)) {
      const int n = kernels::cuda::device_count();
      if (device >= n)
        throw std::invalid_argument("--device " + std::to_string(device) + ": only " + std::to_string(n) +
                                    " CUDA device(s) are visible");
      return std::make_unique<cuda_backend>(device >= 0 ? device : local_rank % n);
    }
#else
    static_cast<void>(device);
    static_cast<void>(local_rank);
    const std::string why = "this build has no CUDA (configured without nvcc or with OFFLOAD_CUDA=OFF)";
#endif
    if (kind == backend_kind::cuda) throw std::invalid_argument("backend 'cuda' cannot run here: " + why);
    note = why + "; using the CPU backend";
    return std::make_unique<cpu_backend>();
  }
  throw std::invalid_argument("unknown backend kind " + std::to_string(int(kind)));
}

}  // namespace offload::detail

namespace offload {

std::string_view to_string(backend_kind k) noexcept {
  switch (k) {
    case backend_kind::automatic: return "auto";
    case backend_kind::cpu: return "cpu";
    case backend_kind::cuda: return "cuda";
  }
  return "unknown";
}

std::optional<backend_kind> backend_from_name(std::string_view name) noexcept {
  for (auto k : {backend_kind::automatic, backend_kind::cpu, backend_kind::cuda})
    if (to_string(k) == name) return k;
  return std::nullopt;
}

}  // namespace offload
