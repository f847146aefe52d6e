#pragma once
// The MPI side of a transmitter or receiver: matched-probe receives into pooled buffers and
// non-blocking sends whose buffers are kept alive until MPI is done with them. Progress
// thread only.

#include "buffer_pool.hpp"
#include "link_schedule.hpp"

#include <mpi.h>

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <span>
#include <optional>
#include <vector>

namespace offload::detail {

/// The one tag mpi-offload uses on its communicator; the kind is in the message header.
inline constexpr int offload_tag = 0x0ff1;

/// A message taken off the wire.
struct incoming {
  int source = -1;
  std::uint64_t size = 0;  ///< bytes the sender sent
  bool oversized = false;  ///< size exceeded the limit; discard `bytes` after reading its header
  buffer bytes;
};

class endpoint {
 public:
  /// With an active `emulate`, sends wait in this endpoint until their emulated release time.
  /// Messages below `blocking_receive_below` bytes are received with a blocking MPI_Mrecv when
  /// no other receive is running (cheaper: their data is there or one local copy away).
  endpoint(MPI_Comm comm, buffer_pool& pool, const link_emulation& emulate = {},
           std::uint64_t blocking_receive_below = 0)
      : m_comm(comm), m_pool(pool), m_schedule(emulate), m_blocking_below(blocking_receive_below) {}
  ~endpoint();

  /// Starts non-blocking receives (MPI_Improbe, MPI_Imrecv) of what has arrived and returns
  /// the next message whose receive completed, if any: a large message over a long link takes
  /// round trips to arrive, and the progress thread must not block on it. Messages of one
  /// source are returned in the order they were matched. Messages over `max_bytes` are received
  /// into a temporary (unpooled) buffer and flagged `oversized`, for the caller to reject. At
  /// most `max_receiving` receives run at once; the rest wait in MPI. Throws for a message of
  /// 2 GiB or more (one MPI_BYTE receive cannot hold it).
  std::optional<incoming> receive(std::uint64_t max_bytes);
  static constexpr std::size_t max_receiving = 256;

  /// Sends `bytes` to `dest`; `done` (optional) runs on the progress thread once MPI no longer
  /// needs the buffer, which then returns to the pool.
  void send(int dest, buffer bytes, std::function<void()> done = {});
  /// Sends bytes owned elsewhere; `keep_alive` holds them until MPI is done.
  void send(int dest, std::span<const std::byte> bytes, std::shared_ptr<const void> keep_alive);
  /// Posts delayed sends that are due and completes finished ones; true when any did.
  bool progress_sends();
  /// Sends not yet completed, delayed ones included.
  std::size_t pending_sends() const noexcept { return m_requests.size() + m_delayed_count; }
  /// When the next delayed send is due (time_point::max() when none is waiting).
  std::chrono::steady_clock::time_point next_release() const noexcept;
  /// Cancels nothing; waits up to `seconds` for pending sends (shutdown path), false on timeout.
  bool drain_sends(double seconds);
  /// Gives up on every send to `dest` (a peer that is gone): delayed ones are dropped, posted
  /// ones are freed with MPI_Request_free (Open MPI cannot cancel a send) and their buffers
  /// kept until this endpoint is destroyed, since MPI may still read them. Returns how many.
  std::size_t abandon(int dest);

  MPI_Comm comm() const noexcept { return m_comm; }

 private:
  struct pending {
    int dest = -1;
    buffer bytes;
    std::shared_ptr<const void> keep_alive;
    std::function<void()> done;
  };
  struct delayed {
    std::int64_t release_ns;
    const std::byte* data;
    std::size_t size;
    pending p;
  };
  void submit(int dest, const std::byte* data, std::size_t size, pending p);
  void post(int dest, const std::byte* data, std::size_t size);
  bool post_due();
  struct receiving {
    MPI_Request request;
    incoming in;
    bool done = false;
  };
  std::optional<incoming> take_ready();
  MPI_Comm m_comm;
  buffer_pool& m_pool;
  link_schedule m_schedule;
  std::uint64_t m_blocking_below;
  std::deque<receiving> m_receiving;  // in match order
  std::vector<MPI_Request> m_test_requests;
  std::vector<std::size_t> m_test_slots;
  std::map<int, std::deque<delayed>> m_delayed;  // per destination, in release order
  std::size_t m_delayed_count = 0;
  std::vector<MPI_Request> m_requests;
  std::vector<pending> m_pending;
  std::vector<pending> m_abandoned;  // freed requests whose buffers MPI may still read
  std::vector<int> m_indices;
};

}  // namespace offload::detail
