#pragma once
// One side's transport: whole messages in from, and out to, peers numbered from 0. The
// transmitter and receiver speak the protocol over this interface only, so credits,
// timeouts, keepalives and fallback are the same code over MPI (mpi_endpoint.hpp) and gRPC
// (grpc_endpoint.hpp), and an endpoint can wrap another (the lab's emulated link,
// src/emulation). The base class holds what every transport shares: the three ways to hand
// over a message. Every member is called from the progress thread only.

#include <offload/grpc.hpp>
#include <offload/host_pool.hpp>
#include <offload/wire.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace offload::detail {

/// A message taken off the wire, or the end of a peer's connection.
struct incoming {
  int source = -1;
  std::uint64_t size = 0;  ///< bytes the sender sent
  bool oversized = false;  ///< size exceeded the limit; `bytes` holds at most its header, to read the id
  /// Not empty when the message came in parts that did not fit its head (docs/protocol.md
  /// section 1): why; `bytes` then holds what arrived, for the request id.
  std::string broken;
  buffer bytes;
  /// The connection to `source` ended (gRPC: the stream closed or failed; never over MPI):
  /// nothing more comes from it and nothing sent to it arrives. `closed_reason` says why.
  bool closed = false;
  std::string closed_reason;
};

/// A message on its way out to `dest`: the wire's one outgoing type (offload/wire.hpp), which
/// holds its bytes until the transport is done. A contiguous message (no payloads listed) goes
/// as one; a gathered one in parts or copied whole, as the transport likes.
struct outgoing {
  int dest = -1;
  outgoing_message m;
};

class endpoint {
 public:
  /// Messages over `max_receive_bytes` are flagged `oversized`, for the caller to reject.
  endpoint(host_pool& pool, std::uint64_t max_receive_bytes) : m_pool(pool), m_max_receive(max_receive_bytes) {}
  virtual ~endpoint() = default;
  endpoint(const endpoint&) = delete;
  endpoint& operator=(const endpoint&) = delete;

  /// The next message that has arrived, if any; messages of one source come in the order sent.
  virtual std::optional<incoming> receive() = 0;
  /// A peer, for messages: "rank 3", "127.0.0.1:7000", "peer 2 (ipv4:127.0.0.1:53412)".
  virtual std::string describe(int peer) const = 0;
  /// The port a listening endpoint listens on (gRPC receivers); 0 for the others.
  virtual int port() const noexcept { return 0; }
  /// Every port it listens on (several for a combined endpoint, listen_all), in order.
  virtual std::vector<int> ports() const { return {port()}; }
  /// Whether `peer` is one of the transmitters a receiver waits for (its expected_peers), or a
  /// session a front end opened for a client of another protocol (KServe v2), which a receiver
  /// serves while it runs but does not wait for.
  virtual bool expected(int /*peer*/) const { return true; }
  /// The caller is done with `peer`, whose connection has closed: what is kept about it goes.
  virtual void forget(int /*peer*/) {}
  /// Opens a new connection to `peer`, whose connection ended (gRPC: a new stream to its
  /// address; what is sent to `peer` from now on goes over it, and its failure arrives as a
  /// `closed` incoming again). False when the transport cannot: MPI ranks stay connected for
  /// the whole job, and a session a receiver rank ended is over for good.
  virtual bool reconnect(int /*peer*/) { return false; }
  /// The client whose token `peer` presented (a service with a tokens file, offload/grpc.hpp);
  /// nullopt without tokens.
  virtual std::optional<client_identity> client_of(int /*peer*/) const { return std::nullopt; }
  /// Calls this endpoint refused for want of a valid token.
  virtual std::uint64_t unauthenticated() const { return 0; }
  /// A graceful drain began (receiver::drain, any thread): a listening endpoint takes no new
  /// connection (gRPC: a new stream or KServe call is answered UNAVAILABLE) and says it is not
  /// ready (KServe ServerReady). Sessions already open go on.
  virtual void drain() {}
  /// When this endpoint next has work that no message or completion will announce (a delayed
  /// send or receive of an emulated link): time_point::max() when none.
  virtual std::chrono::steady_clock::time_point next_release() const noexcept {
    return std::chrono::steady_clock::time_point::max();
  }

  /// Sends `m` to `dest`: a gathered message's payloads without a copy where the transport
  /// can (MPI: in parts above its threshold). What `m` holds is released once the transport is
  /// done with it (a buffer returns to its pool).
  void send(int dest, outgoing_message m) { post({dest, std::move(m)}); }
  /// The same for a contiguous message in a buffer of its own.
  void send(int dest, buffer bytes) { send(dest, outgoing_message::whole(std::move(bytes))); }
  /// (A wrapping endpoint passes its messages on with this.)
  void send(outgoing o) { post(std::move(o)); }
  /// Completes finished sends (and hands delayed ones that are due on); true when any did.
  bool progress_sends() { return complete_sends(); }
  /// Sends not yet completed, delayed ones included.
  std::size_t pending_sends() const noexcept { return posted_sends(); }
  /// Waits up to `seconds` for pending sends (shutdown path), false on timeout.
  bool drain_sends(double seconds);
  /// Gives up on every send to `dest` (a peer that is gone) and returns how many.
  std::size_t abandon(int dest) { return abandon_posted(dest); }

 protected:
  /// Hands one message to the transport.
  virtual void post(outgoing o) = 0;
  /// Completes what the transport finished; true when any send completed.
  virtual bool complete_sends() = 0;
  /// Sends handed to the transport and not completed.
  virtual std::size_t posted_sends() const noexcept = 0;
  /// Gives up the transport's sends to `dest`; returns how many.
  virtual std::size_t abandon_posted(int dest) = 0;

  host_pool& m_pool;
  std::uint64_t m_max_receive;
};

}  // namespace offload::detail
