#include "backend.hpp"

#include <stdexcept>

#ifdef OFFLOAD_WITH_CUDA
#include "cuda_kernels.hpp"
#endif

namespace offload::detail {
namespace {

/// Runs each kernel's CPU implementation on the calling (worker) thread, writing the
/// outputs straight into the pooled reply buffer.
class cpu_backend final : public backend {
 public:
  std::string_view name() const noexcept override { return "cpu"; }
  buffer run(const kernel& k, const message& request, buffer_pool& pool) override {
    const auto& h = request.header();
    return run_cpu(k, request.products(), {message_kind::reply, h.request_id, h.kernel_id, status::ok},
                   [&pool](std::size_t bytes) { return pool.acquire(bytes); });
  }
};

#ifdef OFFLOAD_WITH_CUDA
/// Runs each kernel's CUDA implementation, synchronously, on the current device.
class cuda_backend final : public backend {
 public:
  std::string_view name() const noexcept override { return "cuda"; }
  buffer run(const kernel& k, const message& request, buffer_pool& pool) override {
    const auto impl = kernels::cuda::find(k.name());
    if (impl == nullptr) throw std::runtime_error("kernel has no CUDA implementation");
    const auto& in = request.products();
    auto specs = k.output_specs(in);
    const auto& h = request.header();
    message_writer out({message_kind::reply, h.request_id, h.kernel_id, status::ok}, specs,
                       pool.acquire(message_writer::size_for(specs)));
    impl(in, out);
    return std::move(out).finish();
  }
};
#endif

}  // namespace

std::unique_ptr<backend> make_backend(const std::string& name) {
  if (name == "cpu") return std::make_unique<cpu_backend>();
  if (name == "cuda") {
#ifdef OFFLOAD_WITH_CUDA
    std::string why;
    if (!kernels::cuda::device_available(why)) throw std::invalid_argument("backend 'cuda' cannot run here: " + why);
    return std::make_unique<cuda_backend>();
#else
    throw std::invalid_argument("backend 'cuda' is not in this build (configured without CUDA); use --backend cpu");
#endif
  }
  throw std::invalid_argument("unknown backend '" + name + "' (known: cpu, cuda)");
}

}  // namespace offload::detail
