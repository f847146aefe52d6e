#include "backend.hpp"

#include <stdexcept>

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

}  // namespace

std::unique_ptr<backend> make_backend(const std::string& name) {
  if (name == "cpu") return std::make_unique<cpu_backend>();
  if (name == "cuda")
    throw std::invalid_argument("backend 'cuda' is not available in this build of the receiver yet; use --backend cpu");
  throw std::invalid_argument("unknown backend '" + name + "' (known: cpu, cuda)");
}

}  // namespace offload::detail
