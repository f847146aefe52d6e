#pragma once
// The transmitter's view of each receiver (its session's state, credits, the kernels it serves)
// and the choice of the receiver for the next request.

#include "src/session/handshake.hpp"

#include <offload/transmitter.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace offload::detail {

/// Where a transmitter's session with one receiver stands (docs/protocol.md section 6).
enum class link_state : std::uint8_t {
  connecting,  ///< hello sent, no answer yet
  open,        ///< in session: takes requests for the kernels it serves
  down,        ///< no session: unreachable, or its connection or session ended; tried again at retry_at
  refused,     ///< it refused the session (no kernel in common) or sent a bad hello_ack: not tried again
  closing,     ///< goodbye sent, goodbye_ack awaited
  closed,      ///< goodbye acknowledged, or given up
};
std::string_view to_string(link_state s) noexcept;

struct receiver_link {
  int peer = -1;  // the endpoint's number for it: its rank over MPI, its index over gRPC
  link_state state = link_state::connecting;
  std::uint32_t outstanding = 0;
  std::uint32_t credits = 0;                         // ours, or fewer when the receiver grants fewer
  bool suspect = false;                              // a request to it timed out: no new ones until it answers
  std::optional<session_terms> terms;                // from its hello_ack
  std::vector<std::int32_t> kernel_ids;              // our kernel id -> its id, -1: not served there
  std::string missing;                               // our kernels it lacks, as kernels_not_offered says
  std::chrono::steady_clock::duration keepalive{0};  // send one after this long without sending (0: never)
  std::chrono::steady_clock::time_point last_sent;
  std::string problem;                             // why it is down or refused (the last reason)
  std::chrono::steady_clock::time_point retry_at;  // down: when to try again
  std::chrono::milliseconds backoff{0};            // down: the wait before the next try after this one
  std::uint32_t sessions = 0;                      // sessions opened with it
  std::int64_t clock_offset_ns = 0;                // receiver clock minus ours, from the handshake

  /// In session, not set aside, and serving our kernel `kernel`: it takes such requests (when
  /// it has a free credit).
  bool takes(std::uint32_t kernel) const noexcept {
    return state == link_state::open && !suspect && kernel < kernel_ids.size() && kernel_ids[kernel] >= 0;
  }
};

/// Which receivers (by index) a request may go to, beyond taking its kernel: not one that
/// answered it `busy`, nor one whose limits it exceeds.
using eligible_fn = std::function<bool(std::size_t)>;

/// The receiver for the next request of kernel `kernel` among those that take it, have a free
/// credit and are `eligible`: the first from `next` on (round robin) or the one with the
/// fewest outstanding (from `next` on, the first of equals). -1 when none has a free credit.
/// Moves `next` past the choice.
int choose_receiver(std::span<const receiver_link> links, std::uint32_t kernel, routing policy, std::size_t& next,
                    const eligible_fn& eligible) noexcept;

/// True when any `eligible` receiver takes requests of kernel `kernel`, credits or not.
bool any_takes(std::span<const receiver_link> links, std::uint32_t kernel, const eligible_fn& eligible) noexcept;

}  // namespace offload::detail
