#include "backend.hpp"

#include <chrono>
#include <semaphore>
#include <stdexcept>
#include <thread>

#ifdef OFFLOAD_WITH_CUDA
#include "kernels/cuda/cuda_kernels.hpp"
#endif

namespace offload::detail {
namespace {

/// Runs each kernel's CPU implementation on the calling (worker) thread, writing the
/// outputs straight into the pooled reply buffers.
class cpu_backend final : public backend {
 public:
  backend_kind kind() const noexcept override { return backend_kind::cpu; }
  void run(const kernel& k, std::span<const product_views* const> ins, std::span<message_writer* const> outs) override {
    k.run_cpu_batch(ins, outs);
  }
};

/// A device of a profile, EMULATED: each batch takes the profile's time for its model and
/// size, asleep on the calling kernel thread (a GPU computes while its host thread waits), at
/// most `concurrency` batches at once; the outputs are exact (kernel::emulate_outputs, or
/// run_cpu for a kernel without a cheap path).
class emulated_backend final : public backend {
 public:
  explicit emulated_backend(const device_profile& p) : m_profile(p), m_slots(std::ptrdiff_t(p.concurrency)) {
    if (p.models.empty()) throw std::invalid_argument("backend 'emulated' needs a device profile (--profile)");
  }
  backend_kind kind() const noexcept override { return backend_kind::emulated; }
  std::string description() const override { return "EMULATED (" + m_profile.device + ", " + m_profile.path + ")"; }
  std::size_t concurrency() const override { return m_profile.concurrency; }
  void run(const kernel& k, std::span<const product_views* const> ins, std::span<message_writer* const> outs) override {
    const model_timing* m = m_profile.find(k.name());
    if (m == nullptr)
      throw std::runtime_error("device profile " + m_profile.path + " has no model '" + std::string(k.name()) +
                               "' (it has: " + m_profile.model_names() + ")");
    double items = 0, bytes_in = 0, bytes_out = 0;
    for (std::size_t i = 0; i < ins.size(); ++i) {
      items += double(k.items(*ins[i]));
      for (const auto& p : *ins[i]) bytes_in += double(p.size_bytes());
      for (std::size_t o = 0; o < outs[i]->product_count(); ++o) bytes_out += double(outs[i]->payload(o).size());
    }
    const auto hold = std::chrono::duration<double>(m_profile.batch_seconds(*m, items, bytes_in, bytes_out));
    m_slots.acquire();
    struct release {
      std::counting_semaphore<>& s;
      ~release() { s.release(); }
    } guard{m_slots};
    const auto until = std::chrono::steady_clock::now() + std::chrono::duration_cast<std::chrono::nanoseconds>(hold);
    for (std::size_t i = 0; i < ins.size(); ++i)
      if (!k.emulate_outputs(*ins[i], *outs[i])) k.run_cpu(*ins[i], *outs[i]);
    std::this_thread::sleep_until(until);
  }

 private:
  device_profile m_profile;
  std::counting_semaphore<> m_slots;
};

#ifdef OFFLOAD_WITH_CUDA
/// Runs each kernel's CUDA implementation, synchronously, on the current device. A batch of a
/// joinable kernel is one launch over the joined inputs, split back per request; other
/// batches are one launch per request. A kernel without a CUDA implementation runs on the CPU.
class cuda_backend final : public backend {
 public:
  explicit cuda_backend(int device) : m_device(device), m_report(kernels::cuda::device_report(device)) {}
  backend_kind kind() const noexcept override { return backend_kind::cuda; }
  std::string description() const override { return "cuda " + m_report; }
  void run(const kernel& k, std::span<const product_views* const> ins, std::span<message_writer* const> outs) override {
    if (k.cuda() == nullptr) {
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

std::unique_ptr<backend> make_backend(backend_kind kind, int device, int local_rank, std::string& note,
                                      const device_profile& profile) {
  if (kind == backend_kind::cpu) return std::make_unique<cpu_backend>();
  if (kind == backend_kind::emulated) return std::make_unique<emulated_backend>(profile);
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
    case backend_kind::emulated: return "emulated";
  }
  return "unknown";
}

std::optional<backend_kind> backend_from_name(std::string_view name) noexcept {
  for (auto k : {backend_kind::automatic, backend_kind::cpu, backend_kind::cuda, backend_kind::emulated})
    if (to_string(k) == name) return k;
  return std::nullopt;
}

}  // namespace offload
