#pragma once
/// \file
/// The MPI runtime of a rank: one progress thread that is the only thread calling MPI for the
/// library. Transmitters and receivers attach to it as clients; every other thread talks to
/// them through queues and `call`/`post`.
///
/// Two ways to start it: the runtime owns MPI (the default: its progress thread calls
/// MPI_Init_thread, so MPI_THREAD_FUNNELED suffices, and MPI_Finalize at the end), or it adopts
/// the MPI an application initialised (offload/mpi.hpp: adopt_mpi; the application keeps
/// MPI_Init and MPI_Finalize, and must have MPI_THREAD_MULTIPLE).

#include <offload/progress.hpp>

#include <chrono>
#include <functional>
#include <future>
#include <memory>
#include <stdexcept>
#include <string>
#include <type_traits>

namespace offload {

namespace detail {
struct runtime_access;
}
struct adopt_mpi;  // offload/mpi.hpp

/// An MPI call failed; the text names the call, the file and line, the rank and MPI's message.
class mpi_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Owns MPI for this process: initialisation, a duplicate of MPI_COMM_WORLD (errors
/// return; offload/mpi.hpp's comm_of gives it), the progress thread, and MPI_Finalize when
/// destroyed. One per process. (Without MPI, see progress_options::mpi: the progress thread only.)
class runtime {
 public:
  explicit runtime(const progress_options& options = {});
  /// Attaches to the MPI the application initialised, working on a duplicate of the
  /// communicator `app` names (rank() and size() are in it); never initialises or finalises
  /// MPI, and leaves the application's communicators alone. Collective over that communicator.
  /// Throws mpi_error when MPI is not initialised, already finalised, or initialised below
  /// MPI_THREAD_MULTIPLE (naming the level it has). `options.mpi` and `thread_multiple` are
  /// ignored. Destroy the runtime before the application calls MPI_Finalize.
  explicit runtime(const adopt_mpi& app, const progress_options& options = {});
  ~runtime();
  runtime(const runtime&) = delete;
  runtime& operator=(const runtime&) = delete;

  int rank() const noexcept;
  int size() const noexcept;
  /// This rank's index among the ranks on its node, and how many there are
  /// (MPI_Comm_split_type with MPI_COMM_TYPE_SHARED): the usual way to pick a GPU.
  int local_rank() const noexcept;
  int local_size() const noexcept;
  /// MPI_Get_processor_name of this rank (without MPI: the host name).
  const std::string& host() const noexcept;
  /// True when the calling thread is the progress thread.
  bool on_progress_thread() const noexcept;

  /// Runs `f` on the progress thread, waits, and returns its result or rethrows its exception.
  template <class F> std::invoke_result_t<F> call(F&& f) {
    using R = std::invoke_result_t<F>;
    if (on_progress_thread()) return f();
    auto task = std::make_shared<std::packaged_task<R()>>(std::forward<F>(f));
    auto done = task->get_future();
    post([task] { (*task)(); });
    return done.get();
  }
  /// Queues `f` for the progress thread and returns at once. `f` must not throw.
  void post(std::function<void()> f);
  /// Wakes the progress thread (safe from any thread).
  void wake() noexcept;
  /// A barrier over comm() that keeps the progress thread (and so every client) running
  /// while it waits. Call it from any thread but the progress thread.
  void barrier();
  /// True on every rank when `mine` is true on every rank (a non-blocking allreduce, like
  /// barrier()). For start-up checks that must end the whole job cleanly when one rank fails.
  bool all_agree(bool mine);
  /// Ends the whole job at once (MPI_Abort). The one MPI call made from the calling thread,
  /// because the progress thread may be the one that is stuck; for unrecoverable errors only.
  [[noreturn]] void abort(int code) noexcept;
  /// Adds or removes a polled client (from any thread; returns once it took effect). attach
  /// warns (offload/log.hpp), once per runtime, when the calling thread and the progress thread
  /// are bound to the same single core: they, and the threads the caller starts, take turns.
  void attach(progress_client& client);
  void detach(progress_client& client);

 private:
  friend struct detail::runtime_access;  // offload/mpi.hpp's comm_of
  struct impl;
  void start();
  std::unique_ptr<impl> m_impl;
};

}  // namespace offload
