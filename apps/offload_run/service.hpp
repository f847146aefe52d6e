#pragma once
// Receivers as a service: a receiver job opens an MPI port and serves transmitter jobs that
// connect, run and disconnect, one after the other or at once, until a stop request comes.
// The port name is written to a file (on a shared path) and, with a name, published to the
// Open MPI name server (ompi-server). Jobs launched by different mpiruns can only connect when
// every mpirun was given the same name server: `mpirun --ompi-server file:URI_FILE`.
//
// Each connection is an intercommunicator, merged into one intracommunicator in which the
// receivers are ranks 0..R-1 and the transmitters follow; the transmitter and receiver classes
// run on it unchanged (mpi_link::comm). MPI_Comm_accept blocks, so the receiver job's
// main thread accepts while the progress thread serves the sessions already open: the runtime
// runs with MPI_THREAD_MULTIPLE in these modes.

#include "apps/common/options.hpp"

#include <offload/kernel.hpp>
#include <offload/mpi.hpp>
#include <offload/runtime.hpp>

#include <stdexcept>
#include <string>

namespace offload::app {

/// What a connecting job asks for, sent right after the connection is made.
enum class service_request : int { run = 1, stop = 2 };

/// A connection to a receiver service, from a transmitter job's side.
struct service_link {
  MPI_Comm inter = MPI_COMM_NULL;   ///< from MPI_Comm_connect
  MPI_Comm merged = MPI_COMM_NULL;  ///< receivers 0..R-1, then this job's ranks
  int receivers = 0;                ///< R
};

/// No port name appeared within --connect-timeout (every rank of the job throws it).
struct service_not_found : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// Connects this job (collective over comm_of(rt), from the main thread) to the service whose
/// port is in `port_file` or published as `name`, and says what it wants. Throws
/// service_not_found when no port name appears within --connect-timeout, std::runtime_error
/// naming what failed otherwise (connection refused, ...).
service_link connect_service(runtime& rt, const options& o, service_request what);
/// Frees the merged communicator and disconnects (collective, main thread).
void disconnect_service(service_link& link);

/// The receiver job's loop (every rank is a receiver): opens the port, writes the port file,
/// publishes the name, serves sessions until a stop request, then prints what it served on rank
/// 0 and returns the exit status.
int serve(runtime& rt, const options& o, const kernel_registry& kernels);

}  // namespace offload::app
