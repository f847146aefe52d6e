#pragma once
/// \file
/// The KServe v2 "Open Inference Protocol" over gRPC (as NVIDIA Triton serves it), as
/// transports. A transmitter constructed with `kserve_link` sends its requests as ModelInfer
/// calls to KServe v2 servers (offload-serve --kserve, NVIDIA Triton, any other): a kernel's name
/// is the model's name, its declared tensors (kernel::io) give the inputs' shapes, and the
/// timeouts, fallback, failover and counters are those of every transport. A receiver
/// constructed with `kserve_listen` serves the service
/// `inference.GRPCInferenceService` to any KServe v2 client (Triton's tritonclient and
/// perf_analyzer, CMSSW's SonicTriton, a client of your own): its kernels that declare their
/// inputs and outputs (kernel::io) are the models, by name and version. Requests go through
/// the receiver's scheduler, batching and fairness as those of transmitters do; each client
/// connection (each stream of ModelStreamInfer) is one peer. docs/transports.md, "KServe v2",
/// says what is served and every choice made where the specification leaves one. No gRPC
/// header is needed here; a build without gRPC refuses the value when the receiver is made.

#include <offload/grpc.hpp>
#include <offload/transport.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace offload {

/// A transmitter's receivers: KServe v2 servers at "host:port" each (receiver i is
/// addresses[i]). A server is in session once it answers RepositoryIndex; it serves the kernels
/// whose name is one of its ready models in the kernel's version (or the version pinned here).
struct kserve_link {
  std::vector<std::string> addresses;
  /// Per kernel name: the model version to call (e.g. a Triton model's "3") in place of the
  /// kernel's own version.
  std::map<std::string, std::string> versions{};
  /// Requests one server may have outstanding from this transmitter (the session's credits).
  std::uint32_t credits = 64;
  /// TLS and the token (offload/grpc.hpp).
  client_security security{};

  operator transport() const;  // NOLINT(google-explicit-constructor): a conversion by design
};

/// A receiver serving KServe v2 over gRPC on `address` ("host:port"; port 0 picks a free one,
/// see receiver::port()).
struct kserve_listen {
  std::string address;
  /// Most memory gRPC may hold for this server (its resource quota); 0: no bound.
  std::size_t memory_bytes = 0;
  /// A client connection with nothing outstanding for this long ends its session (a new one
  /// opens with its next request); at most a quarter of the receiver's idle timeout is used.
  std::chrono::milliseconds session_idle{5000};
  /// Requests one client connection may have waiting here beyond the receiver's credits; more
  /// are answered UNAVAILABLE ("busy") at once. A ModelStreamInfer stream reads no further
  /// request while this many of its answers are not written (gRPC's flow control then holds
  /// its client). With L the largest message, a session holds at most (credits + this) x L.
  std::size_t max_backlog = 256;
  /// TLS and tokens (offload/grpc.hpp): a call without a good token is answered UNAUTHENTICATED.
  server_security security{};

  /// The transport value (offload/transport.hpp) of these settings.
  operator transport() const;  // NOLINT(google-explicit-constructor): a conversion by design
};

}  // namespace offload
