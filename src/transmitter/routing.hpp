#pragma once
// The transmitter's view of each receiver (session state, credits) and the choice of the
// receiver for the next request.

#include "src/session/handshake.hpp"

#include <offload/transmitter.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace offload::detail {

struct receiver_link {
  int peer = -1;  // the endpoint's number for it: its rank over MPI, its index over gRPC
  std::uint32_t outstanding = 0;
  std::uint32_t credits = 0;  // ours, or fewer when the receiver grants fewer
  bool hello_answered = false;
  bool accepted = false;
  bool suspect = false;                              // a request to it timed out: no new ones until it answers
  std::optional<session_terms> terms;                // from its hello_ack
  std::chrono::steady_clock::duration keepalive{0};  // send one after this long without sending (0: never)
  std::chrono::steady_clock::time_point last_sent;
  bool goodbye_sent = false;
  bool goodbye_acked = false;
  std::string refusal;
  std::int64_t clock_offset_ns = 0;  // receiver clock minus ours, from the handshake

  /// In session and not set aside: it takes requests (when it has a free credit).
  bool takes_requests() const noexcept { return accepted && !goodbye_sent && !suspect; }
};

/// The receiver for the next request among those that take requests, have a free credit and
/// are not marked in `skip` (by index; shorter than `links`: the rest are not skipped): the
/// first from `next` on (round robin) or the one with the fewest outstanding (from `next` on,
/// the first of equals). -1 when none has a free credit. Moves `next` past the choice.
int choose_receiver(std::span<const receiver_link> links, routing policy, std::size_t& next,
                    const std::vector<bool>& skip = {}) noexcept;

/// True when any receiver not marked in `skip` takes requests, credits or not.
bool any_takes_requests(std::span<const receiver_link> links, const std::vector<bool>& skip = {}) noexcept;

}  // namespace offload::detail
