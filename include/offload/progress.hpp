#pragma once
/// \file
/// The progress thread's settings and its clients (the progress engine, which knows no MPI;
/// offload/runtime.hpp runs it with MPI's lifecycle around it).

#include <chrono>

namespace offload {

/// How the progress thread waits when there is nothing to do. New work from other threads wakes
/// it at once; an incoming MPI message is only seen when it polls. After its last work it polls
/// without pause until `spin`, yields the core between polls until `yield`, then sleeps,
/// doubling from 1 µs up to `max_sleep` (so a message is seen at most `max_sleep` late).
/// With `adaptive` (the default) `spin` and `yield` are upper bounds: the thread learns from its
/// recent idle gaps (going idle to the next work) and polls about twice the usual gap when that
/// gap is at most 2 x `max_sleep`, and sleeps at once when work comes further apart
/// (src/progress/poll_budget.hpp; results/wait-policy.md). MPI moves a message larger than the
/// eager limit only while both sides poll.
struct progress_options {
  std::chrono::microseconds spin{50};
  std::chrono::microseconds yield{2000};
  std::chrono::microseconds max_sleep{200};
  /// False: poll for `spin` and `yield` after every piece of work, whatever the gaps (the fixed
  /// policies spin, yield and block).
  bool adaptive = true;
  /// Initialise MPI with MPI_THREAD_MULTIPLE instead of FUNNELED, for programs whose other
  /// threads must block in MPI themselves (MPI_Comm_accept of a receiver service) while the
  /// progress thread keeps serving. The library's own calls stay on the progress thread.
  bool thread_multiple = false;
  /// False: no MPI in this process at all (a gRPC-only program, run without mpirun): rank 0 of
  /// 1, comm() is MPI_COMM_NULL, barrier() and all_agree() involve no other process, and
  /// abort() exits. The progress thread serves its clients all the same.
  bool mpi = true;
};

/// Something the progress thread polls. `progress` runs on the progress thread only.
class progress_client {
 public:
  virtual ~progress_client() = default;
  /// Does whatever MPI work is ready; returns true when anything happened.
  virtual bool progress() = 0;
  /// When the client next has work due by the clock (an emulated-link send): an idle progress
  /// thread sleeps no longer than that. Default: never.
  virtual std::chrono::steady_clock::time_point wake_by() const { return std::chrono::steady_clock::time_point::max(); }
};

}  // namespace offload
