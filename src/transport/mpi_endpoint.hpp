#pragma once
// The MPI transport: matched-probe receives into pooled buffers and non-blocking sends whose
// buffers are kept alive until MPI is done with them. Peers are ranks of the communicator.

#include "endpoint.hpp"

#include <mpi.h>

#include <vector>

namespace offload::detail {

/// The one tag mpi-offload uses on its communicator; the kind is in the message header.
inline constexpr int offload_tag = 0x0ff1;

class mpi_endpoint final : public endpoint {
 public:
  /// Messages below `blocking_receive_below` bytes are received with a blocking MPI_Mrecv when
  /// no other receive is running (cheaper: their data is there or one local copy away).
  mpi_endpoint(MPI_Comm comm, buffer_pool& pool, std::uint64_t max_receive_bytes, const link_emulation& emulate = {},
               std::uint64_t blocking_receive_below = 0)
      : endpoint(pool, max_receive_bytes, emulate), m_comm(comm), m_blocking_below(blocking_receive_below) {}
  ~mpi_endpoint() override;

  /// Starts non-blocking receives (MPI_Improbe, MPI_Imrecv) of what has arrived and returns
  /// the next message whose receive completed, if any: a large message over a long link takes
  /// round trips to arrive, and the progress thread must not block on it. Messages of one
  /// source are returned in the order they were matched. Messages over the maximum are
  /// received whole (MPI cannot drop a matched message) into a temporary (unpooled) buffer,
  /// one at a time (the others wait, matched, until the call after the one that returned it),
  /// and flagged `oversized`. At most `max_receiving` receives run at once; the rest wait in
  /// MPI. Throws for a message of 2 GiB or more (one MPI_BYTE receive cannot hold it).
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
    MPI_Request request;
    incoming in;
    bool done = false;
    bool started = true;  // false: an oversized message matched, waiting for the one before it
    MPI_Message message = MPI_MESSAGE_NULL;
  };
  void start_oversized(receiving& r);
  std::optional<incoming> take_ready();
  template <class Remove> std::size_t remove_sends_if(Remove remove);
  MPI_Comm m_comm;
  std::uint64_t m_blocking_below;
  std::deque<receiving> m_receiving;  // in match order
  bool m_oversized_running = false;   // an oversized receive started and not yet taken
  std::vector<MPI_Request> m_test_requests;
  std::vector<std::size_t> m_test_slots;
  std::vector<MPI_Request> m_requests;
  std::vector<outgoing> m_pending;
  std::vector<outgoing> m_abandoned;  // freed requests whose buffers MPI may still read
  std::vector<int> m_indices;
};

}  // namespace offload::detail
