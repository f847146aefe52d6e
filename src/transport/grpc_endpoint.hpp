#pragma once
// The gRPC transport. One bidirectional stream per transmitter-receiver pair, on the method
// "/offload.Offload/Session"; each gRPC message is one mpi-offload wire message, unchanged (no
// protobuf framing: the wire format already is the serialization). gRPC's generic API moves raw byte buffers, so a send
// hands gRPC a slice that points at our buffer (no copy) and a receive copies the slices once
// into a pooled, aligned buffer, as an MPI receive does. Completion queues are served by
// threads of this endpoint, which queue what arrived and wake the progress thread.
//
// No gRPC header is included here: a build without gRPC compiles this interface and gets a
// clear error from the factories.

#include "endpoint.hpp"

#include <offload/grpc.hpp>

#include <cstddef>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace offload::detail {

/// The build has no gRPC, or gRPC could not listen or connect.
class grpc_unavailable : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// The full method name of the session stream.
inline constexpr const char* grpc_session_method = "/offload.Offload/Session";

/// A transmitter's side: peer i is `link.addresses[i]` ("host:port"), reached with
/// `link.security`. Streams are opened at once; one that cannot be opened arrives as a `closed`
/// incoming for its peer. Throws std::invalid_argument for unreadable certificate files.
std::unique_ptr<endpoint> make_grpc_client(const grpc_link& link, host_pool& pool, std::uint64_t max_receive_bytes,
                                           std::function<void()> wake);

/// A receiver's side: listens on `listen.address` ("host:port"; port 0 picks a free one: see
/// endpoint::port()) with `listen.threads` completion-queue threads, gRPC's memory bounded by
/// `listen.memory_bytes`. Each accepted stream is a new peer, numbered from 0 in the order they
/// arrive; one with more than `max_queued_sends` messages waiting to be written to it (a client
/// that does not read) is cancelled. With `listen.security`: TLS, and a stream without a valid
/// token is answered UNAUTHENTICATED and never becomes a peer. Throws grpc_unavailable when it
/// cannot listen, std::invalid_argument for bad security settings (server_credentials).
std::unique_ptr<endpoint> make_grpc_server(const grpc_listen& listen, host_pool& pool, std::uint64_t max_receive_bytes,
                                           std::size_t max_queued_sends, std::function<void()> wake);

}  // namespace offload::detail
