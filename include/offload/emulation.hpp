#pragma once
/// \file
/// The measurement lab's emulations (target offload_emulation; the core library works without
/// it): network distance as a wrapper around any transport, a site's shared uplink, and a
/// device of a profile as a receiver backend. For measuring what a remote GPU costs without a
/// remote GPU; every output that reports one of them says "EMULATED".

#include <offload/backend.hpp>
#include <offload/device_profile.hpp>
#include <offload/transport.hpp>

#include <chrono>
#include <memory>

namespace offload {

/// Each message leaves its sender `latency` (plus a uniform draw in ±`jitter`, never below
/// zero) after it was handed over, and after every earlier message to the same peer (a link
/// stays FIFO, like TCP). With `bandwidth_bps` > 0 a link carries one message at a time at that
/// rate, so a message also waits for the ones before it to be "on the wire". Other links and
/// the receiving side are not held up: messages wait in a queue of the sending progress thread,
/// not in MPI. Emulate both transmitter and receiver to delay both directions; a round trip
/// then gains twice `latency`.
struct link_emulation {
  std::chrono::nanoseconds latency{0};
  std::chrono::nanoseconds jitter{0};
  double bandwidth_bps = 0;  ///< 0: unlimited
  bool active() const noexcept { return latency.count() > 0 || jitter.count() > 0 || bandwidth_bps > 0; }
};

/// `inner` (mpi_link, grpc_link, grpc_listen) with its sends delayed as `sends` says and, with
/// `site_link_bps` > 0, every message received from any peer passed one after another through
/// a shared link of that many bits per second before it is taken (a site's uplink into a GPU
/// cluster, which many transmitters can fill; the wait counts as network time). Throws
/// std::invalid_argument for a negative or non-finite rate.
transport emulated_link(transport inner, const link_emulation& sends, double site_link_bps = 0);

/// A device of `profile`, EMULATED, as a receiver backend (receiver_config::custom_backend):
/// each batch holds its kernel thread, asleep, for the profile's time of its model and size
/// (device_profile::batch_seconds), at most `profile.concurrency` batches at once (the receiver
/// runs at least that many kernel threads), so that the receiver's own work (receive, batch,
/// reply) stays real and no core is taken for the device's time. Outputs are the kernel's
/// exact ones (kernel::emulate_outputs, or run_cpu where it has none). A request for a kernel
/// that the profile has no model for fails with kernel_failed, naming the profile. Throws
/// std::invalid_argument for a profile without models.
std::shared_ptr<backend> emulated_backend(const device_profile& profile);

}  // namespace offload
