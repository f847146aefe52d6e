#pragma once
/// \file
/// The gRPC transport's settings (convert them to an offload::transport). No gRPC header is
/// needed to use them; a build without gRPC refuses them with std::runtime_error when a
/// transmitter or receiver is constructed.

#include <cstddef>
#include <string>
#include <vector>

namespace offload {

/// A transmitter's receivers, reached over gRPC: "host:port" each (offload-serve, or a
/// receiver constructed with grpc_listen). Receiver i of the results is addresses[i].
struct grpc_link {
  std::vector<std::string> addresses;
};

/// A receiver serving over gRPC: it listens on `address` ("host:port"; port 0 picks a free
/// one, see receiver::port()) with `threads` completion-queue threads. Each transmitter's
/// stream is one peer.
struct grpc_listen {
  std::string address;
  std::size_t threads = 2;
  /// Most memory gRPC may hold for this server (its resource quota: messages being received,
  /// connection buffers); a stream that would take more is reset (RST_STREAM). It bounds what
  /// clients sending at once, or sending oversized messages, can make the server hold
  /// (docs/design.md, "What a service can cost"). Zero: no bound.
  std::size_t memory_bytes = 0;
};

}  // namespace offload
