#pragma once
/// \file
/// Where a receiver runs kernels. The library has the CPU and (built with CUDA) the CUDA
/// backend, chosen by receiver_config::backend; an application can pass in its own
/// (receiver_config::custom_backend), as the measurement lab does with its emulated device
/// (offload/emulation.hpp).

#include <offload/host_pool.hpp>
#include <offload/kernel.hpp>
#include <offload/wire.hpp>

#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <string_view>

namespace offload {

/// Runs a kernel on a batch of requests. One backend serves every kernel thread of a receiver:
/// run() is called from several threads at once (at most concurrency() when that is not 0).
class backend {
 public:
  virtual ~backend() = default;
  /// Its name in reports and statistics ("cpu", "cuda", "emulated").
  virtual std::string_view name() const noexcept = 0;
  /// What it runs on, for the run's metadata (the device report for cuda).
  virtual std::string description() const { return std::string(name()); }
  /// Runs `k` on a batch of requests as one launch: `outs[i]` is laid out from
  /// `k.output_specs(*ins[i])` (the caller checked the inputs). Throws when the kernel fails.
  virtual void run(const kernel& k, std::span<const product_views* const> ins,
                   std::span<message_writer* const> outs) = 0;
  /// Batches it runs at once when given that many threads (0: as many as it is given); the
  /// receiver runs at least that many kernel threads.
  virtual std::size_t concurrency() const { return 0; }
  /// True when it runs kernels on the calling thread's CPU (kernel::run_cpu), so that a cheap
  /// kernel may run on the receiver's progress thread instead (receiver_config::inline_budget).
  virtual bool on_cpu() const noexcept { return false; }
  /// Page-locks the receiver's pooled host memory (requests and replies) for this backend's
  /// device copies, or nullptr (the default) to leave it pageable. The CUDA backend's pins it.
  virtual std::shared_ptr<host_pool::pinner> host_pinner() const { return nullptr; }
};

}  // namespace offload
