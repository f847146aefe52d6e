#pragma once
// The MPI transport: matched-probe receives into pooled buffers and non-blocking sends whose
// buffers are kept alive until MPI is done with them. Peers are ranks of the communicator.
// A gathered message at or above `parts_from` bytes goes as its head (tag offload_tag) and
// one part per payload with bytes (tag part_tag), each sent from where it lies; the receiving
// side receives each part straight into its place in one buffer (docs/protocol.md section 1).

#include "endpoint.hpp"

#include <mpi.h>

#include <deque>
#include <list>
#include <map>
#include <vector>

namespace offload::detail {

/// The one tag mpi-offload uses on its communicator; the kind is in the message header.
inline constexpr int offload_tag = 0x0ff1;
/// The tag of the parts that follow a head.
inline constexpr int part_tag = 0x0ff2;

class mpi_endpoint final : public endpoint {
 public:
  /// Messages below `blocking_receive_below` bytes are received with a blocking MPI_Mrecv when
  /// no other receive is running (cheaper: their data is there or one local copy away).
  /// Gathered messages of at least `parts_from` bytes are sent in parts, smaller ones copied whole.
  mpi_endpoint(MPI_Comm comm, host_pool& pool, std::uint64_t max_receive_bytes,
               std::uint64_t blocking_receive_below = 0, std::uint64_t parts_from = 0)
      : endpoint(pool, max_receive_bytes),
        m_comm(comm),
        m_blocking_below(blocking_receive_below),
        m_parts_from(parts_from) {}
  ~mpi_endpoint() override;

  /// Starts non-blocking receives (MPI_Improbe, MPI_Imrecv) of what has arrived and returns
  /// the next message whose receive completed, if any: a large message over a long link takes
  /// round trips to arrive, and the progress thread must not block on it. Messages of one
  /// source are returned in the order they were matched. Messages over the maximum are
  /// received whole (MPI cannot drop a matched message) into a temporary (unpooled) buffer,
  /// whatever their size (2 GiB and more too: as one element of a derived datatype), and
  /// flagged `oversized`; the buffer is freed as soon as the receive completes (`bytes` keeps
  /// the header, for the request id). Such receives, and those of dropped parts, run one at a
  /// time when over the maximum (smaller dropped parts: up to the maximum in bytes together);
  /// the others wait, matched or in MPI. At most `max_receiving` receives run at once; the
  /// rest wait in MPI. A message in parts is returned once every part is in its place; parts
  /// that do not fit their head (sizes, count) are received and dropped, and the message comes
  /// back with `broken` saying why. Nothing a peer sends makes it throw: a message or part whose
  /// memory cannot be allocated is left unreceived in MPI (its sender's send never completes)
  /// and answered as oversized. It throws only for MPI's own failures.
  std::optional<incoming> receive() override;
  static constexpr std::size_t max_receiving = 256;
  std::string describe(int peer) const override { return "rank " + std::to_string(peer); }

 protected:
  void post(outgoing o) override;
  bool complete_sends() override;
  std::size_t posted_sends() const noexcept override { return m_requests.size(); }
  /// Posted sends are freed with MPI_Request_free (Open MPI cannot cancel a send) and their
  /// buffers kept until this endpoint is destroyed, since MPI may still read them.
  std::size_t abandon_posted(int dest) override;

 private:
  struct receiving {
    incoming in;
    std::size_t pending = 1;  // receives not completed: the message (or its head), then its parts
    bool started = true;      // false: an oversized message matched, waiting for its turn to be received
    MPI_Message message = MPI_MESSAGE_NULL;
    bool arrived = false;     // the message (or its head) is in
    bool discarding = false;  // an oversized message whose receive counts in m_discarding
  };
  /// A part expected from a source, in order: where it goes, or (`into` null) `drop` parts to
  /// receive and drop (one entry for them all: a head may announce 2^32 - 1 parts).
  struct wanted_part {
    receiving* into;
    std::uint64_t offset, size;
    std::uint64_t drop = 0;
  };
  /// Whether a receive into a buffer of `bytes` to be dropped may start now (see receive()).
  bool may_discard(std::uint64_t bytes) const noexcept;
  void start_oversized(receiving& r);
  /// Runs once the message (or head) of `r` is in: a head gets its parts wanted.
  void arrived(receiving& r);
  void want_dropped(int source, std::uint32_t parts);
  /// Starts receiving the parts that have arrived, each source's in order.
  void match_parts();
  /// MPI_Imrecv of `count` bytes into `into` (one MPI_BYTE count below 2 GiB, one element of a
  /// derived datatype from there); `dropped` is the buffer of a part received to be dropped.
  /// `to_drop`: `into` is a discard_buffer (its blocks lie apart: see discard_gap).
  void start_receive(MPI_Message& msg, std::byte* into, MPI_Count count, receiving* owner, buffer dropped = {},
                     bool to_drop = false);
  bool test_receives();
  std::optional<incoming> take_ready();
  template <class Remove> std::size_t remove_sends_if(Remove remove);
  void post_one(outgoing o, const std::byte* data, std::size_t size, int tag);
  MPI_Comm m_comm;
  std::uint64_t m_blocking_below;
  std::uint64_t m_parts_from;
  std::list<receiving> m_receiving;  // in match order
  std::uint64_t m_discarding = 0;    // bytes of the buffers to be dropped that receives run into
  // Matched messages that were never received: no memory could be had for them (see receive()).
  std::vector<MPI_Message> m_unreceived;
  std::map<int, std::deque<wanted_part>> m_wanted;
  // Receives in progress: their requests (for MPI_Testsome), whose they are (null: a dropped
  // part), and a dropped part's buffer.
  std::vector<MPI_Request> m_receive_requests;
  std::vector<receiving*> m_receive_owners;
  std::vector<buffer> m_receive_dropped;
  std::vector<MPI_Request> m_requests;
  std::vector<outgoing> m_pending;
  std::vector<outgoing> m_abandoned;  // freed requests whose buffers MPI may still read
  std::vector<int> m_indices;
};

}  // namespace offload::detail
