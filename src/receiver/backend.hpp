#pragma once
// Backends run a kernel on the inputs of one request and produce the reply message.

#include <offload/device_profile.hpp>
#include <offload/kernel.hpp>
#include <offload/receiver.hpp>
#include <offload/wire.hpp>

#include <memory>
#include <span>
#include <string>
#include <string_view>

namespace offload::detail {

class backend {
 public:
  virtual ~backend() = default;
  virtual backend_kind kind() const noexcept = 0;
  std::string_view name() const noexcept { return to_string(kind()); }
  /// What it runs on, for the run's metadata (the device report for cuda).
  virtual std::string description() const { return std::string(name()); }
  /// Runs `k` on a batch of requests as one launch: `outs[i]` is laid out from
  /// `k.output_specs(*ins[i])` (the caller checked the inputs). Throws when the kernel fails.
  virtual void run(const kernel& k, std::span<const product_views* const> ins,
                   std::span<message_writer* const> outs) = 0;
  /// Batches it runs at once when given that many threads (0: as many as it is given).
  virtual std::size_t concurrency() const { return 0; }
};

/// The backend of `kind` (offload/receiver.hpp): cuda throws std::invalid_argument with the
/// reason where it cannot run; automatic falls back to cpu with the reason in `note`. The cuda
/// backend uses `device`, or when it is negative the device `local_rank` modulo the visible devices.
std::unique_ptr<backend> make_backend(backend_kind kind, int device, int local_rank, std::string& note,
                                      const device_profile& profile);

}  // namespace offload::detail
