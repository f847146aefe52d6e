#pragma once
/// \file
/// The MPI side of the public API: the runtime's communicator and the MPI transport's settings.
/// The only public header that includes <mpi.h>.

#include <offload/runtime.hpp>

#include <mpi.h>

#include <cstdint>
#include <vector>

namespace offload {

/// The runtime's communicator: its duplicate of MPI_COMM_WORLD, or of the communicator it
/// adopted (MPI_COMM_NULL when it runs without MPI). Use it on the progress thread only
/// (runtime::call).
MPI_Comm comm_of(const runtime& rt) noexcept;

/// For runtime(const adopt_mpi&): the application has initialised MPI with MPI_THREAD_MULTIPLE
/// and will finalise it; the library works on a duplicate of `comm` (e.g. one part of a split
/// MPI_COMM_WORLD), whose ranks are then the ranks of mpi_link.
struct adopt_mpi {
  MPI_Comm comm = MPI_COMM_WORLD;
};

/// The MPI transport (convert it to an offload::transport).
struct mpi_link {
  /// A transmitter's receivers, as ranks of `comm`. A receiver leaves it empty: it serves
  /// whichever ranks of `comm` say hello.
  std::vector<int> ranks;
  /// The communicator the ranks refer to; MPI_COMM_NULL: the runtime's (comm_of). Another one
  /// (e.g. a job's connection to a service, merged) must outlive the transmitter or receiver.
  MPI_Comm comm = MPI_COMM_NULL;
  /// Messages below this many bytes are received with a blocking MPI_Mrecv when no other
  /// receive is running; larger ones with MPI_Imrecv, completed while the progress thread goes
  /// on. A blocking receive of a message above the transport's eager limit holds the progress
  /// thread for a rendezvous round trip: over a long TCP link set this to the TCP BTL's eager
  /// limit (64 KiB) or 0. Non-blocking receives of mid-size messages cost many-to-one rate
  /// over shared memory (results/overhead.md), hence the default.
  std::uint64_t blocking_receive_below = 256 << 10;
  /// Messages whose payloads lie outside their header's buffer (transmitter::submit with
  /// shared_products, in-place replies: kernel::in_place) of at least this many bytes are sent
  /// as a head and one MPI message per payload, straight from where each lies (no copy);
  /// smaller ones are copied into one message, which costs less than the extra messages
  /// (results/overhead.md).
  std::uint64_t parts_from = 32 << 10;
};

}  // namespace offload
