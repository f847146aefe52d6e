#pragma once
/// \file
/// The transport as a value. A transmitter and a receiver each take one `transport`, made from
/// the settings of the transport it stands for:
///   - `mpi_link` (offload/mpi.hpp): ranks of a communicator; a transmitter's receivers, or a
///     receiver serving whichever ranks say hello;
///   - `grpc_link` (offload/grpc.hpp): a transmitter's receivers at "host:port" addresses;
///   - `grpc_listen` (offload/grpc.hpp): a receiver listening on an address;
///   - `kserve_listen` (offload/kserve.hpp): a receiver serving KServe v2 clients;
///   - `listen_all` (below): a receiver serving on several of these at once.
/// Everything else (credits, timeouts, fallback, limits, batching, statistics) is the same over
/// every transport and lives in transmitter_config / receiver_config. This header needs neither
/// MPI nor gRPC: include offload/mpi.hpp or offload/grpc.hpp where you make the value.

#include <memory>
#include <utility>
#include <vector>

namespace offload {

struct mpi_link;
struct grpc_link;
struct grpc_listen;
struct listen_all;

namespace detail {
class transport_impl;
}

/// A copyable, immutable handle to one transport's settings.
class transport {
 public:
  transport(const mpi_link& link);       // NOLINT(google-explicit-constructor): a conversion by design
  transport(const grpc_link& link);      // NOLINT(google-explicit-constructor)
  transport(const grpc_listen& listen);  // NOLINT(google-explicit-constructor)
  transport(const listen_all& all);      // NOLINT(google-explicit-constructor)
  /// (For the library and the lab.) A transport of another implementation, e.g. one that
  /// wraps a transport (offload/emulation.hpp's emulated_link).
  explicit transport(std::shared_ptr<const detail::transport_impl> impl) noexcept : m_impl(std::move(impl)) {}

  /// (For the library.) The transport's implementation, see src/transport/transport.hpp.
  const detail::transport_impl& impl() const noexcept { return *m_impl; }

 private:
  std::shared_ptr<const detail::transport_impl> m_impl;
};

/// A receiver serving on several transports at once, e.g. transmitters over MPI or gRPC and
/// KServe v2 clients beside them: one receiver, one scheduler, one set of credits and limits
/// for the peers of all of them (receiver::ports() lists each one's port).
struct listen_all {
  std::vector<transport> each;
};

}  // namespace offload
