#pragma once
/// \file
/// The KServe v2 "Open Inference Protocol" over gRPC (as NVIDIA Triton serves it), as a
/// transport: a receiver constructed with `kserve_listen` serves the service
/// `inference.GRPCInferenceService` to any KServe v2 client (Triton's tritonclient and
/// perf_analyzer, CMSSW's SonicTriton, a client of your own): its kernels that declare their
/// inputs and outputs (kernel::io) are the models, by name and version. Requests go through
/// the receiver's scheduler, batching and fairness as those of transmitters do; each client
/// connection (each stream of ModelStreamInfer) is one peer. docs/transports.md, "KServe v2",
/// says what is served and every choice made where the specification leaves one. No gRPC
/// header is needed here; a build without gRPC refuses the value when the receiver is made.

#include <offload/transport.hpp>

#include <chrono>
#include <cstddef>
#include <string>

namespace offload {

/// A receiver serving KServe v2 over gRPC on `address` ("host:port"; port 0 picks a free one,
/// see receiver::port()).
struct kserve_listen {
  std::string address;
  /// Most memory gRPC may hold for this server (its resource quota); 0: no bound.
  std::size_t memory_bytes = 0;
  /// A client connection with nothing outstanding for this long ends its session (a new one
  /// opens with its next request); at most a quarter of the receiver's idle timeout is used.
  std::chrono::milliseconds session_idle{5000};
  /// Requests one client may have waiting here beyond the receiver's credits; more are
  /// answered UNAVAILABLE at once.
  std::size_t max_backlog = 4096;

  /// The transport value (offload/transport.hpp) of these settings.
  operator transport() const;  // NOLINT(google-explicit-constructor): a conversion by design
};

}  // namespace offload
