#pragma once
// What a transport value (offload/transport.hpp) does for the transmitter and the receiver:
// opens their endpoint. One implementation per settings type (mpi_link, grpc_link,
// grpc_listen); a transmitter calls connect, a receiver listen, and the wrong one for a
// settings type throws std::invalid_argument saying which to use.

#include "endpoint.hpp"

#include <offload/runtime.hpp>
#include <offload/transport.hpp>

#include <memory>
#include <string>
#include <vector>

namespace offload {
class kernel_registry;
}

namespace offload::detail {

/// What every endpoint is opened with, whatever the transport.
struct endpoint_settings {
  host_pool& pool;
  std::uint64_t max_receive_bytes;  ///< larger messages arrive flagged `oversized`
  /// (gRPC receivers) most messages waiting to be written to one peer before it is cut off as
  /// a client that does not read; 0: no limit.
  std::size_t max_queued_sends = 0;
  /// (receivers) Its kernels and its limits: what a front end that speaks another protocol
  /// (KServe v2, src/kserve) serves and checks before it writes a request.
  const kernel_registry* kernels = nullptr;
  wire_limits limits{};
};

class transport_impl {
 public:
  virtual ~transport_impl() = default;
  /// A transmitter's endpoint. `receivers` gets the endpoint's numbers of its receivers, in order.
  virtual std::unique_ptr<endpoint> connect(runtime& rt, const endpoint_settings& s,
                                            std::vector<int>& receivers) const = 0;
  /// A receiver's endpoint, and how that receiver names itself in messages ("receiver rank 3",
  /// "receiver at 0.0.0.0:7000").
  struct listening {
    std::unique_ptr<endpoint> ep;
    std::string name;
  };
  virtual listening listen(runtime& rt, const endpoint_settings& s) const = 0;
};

}  // namespace offload::detail
