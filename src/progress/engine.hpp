#pragma once
// The progress engine: one thread that runs posted tasks and polls its clients, and waits as
// progress_options says when nothing happens. It knows no MPI: the runtime (src/runtime/)
// gives it what to run on that thread before serving (MPI_Init) and after (MPI_Finalize), and
// what to do when a client throws (end the job). With the adaptive policy it sizes its idle
// polling from its recent idle gaps (poll_budget.hpp).

#include "poll_budget.hpp"

#include <offload/progress.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace offload::detail {

class progress_engine {
 public:
  struct hooks {
    /// Runs on the thread before it serves; an exception it throws is rethrown by start().
    std::function<void()> setup;
    /// Runs on the thread once it stopped serving (every client detached, every task run).
    std::function<void()> teardown;
    /// A task or client threw: the process cannot go on. Must not return (the engine exits if it does).
    std::function<void(const std::exception&)> fatal;
  };

  explicit progress_engine(const progress_options& options) : m_options(options), m_budget(decide({}, options)) {}
  /// Stops the thread (see hooks::teardown) when it was started.
  ~progress_engine();
  progress_engine(const progress_engine&) = delete;
  progress_engine& operator=(const progress_engine&) = delete;

  /// Starts the thread and returns once `h.setup` ran there; rethrows what it threw (the
  /// thread is then gone).
  void start(hooks h);
  bool on_thread() const noexcept { return std::this_thread::get_id() == m_thread_id; }
  /// Queues `f` for the thread and returns at once.
  void post(std::function<void()> f);
  /// Wakes the thread (any thread).
  void wake() noexcept;
  /// Adds or removes a polled client: on the engine's thread only (post it).
  void add(progress_client& c) { m_clients.push_back(&c); }
  void remove(progress_client& c) { std::erase(m_clients, &c); }

 private:
  void loop();
  bool run_tasks();
  void idle_wait(std::chrono::steady_clock::time_point now, std::chrono::steady_clock::time_point last_busy,
                 std::chrono::microseconds& sleep);

  progress_options m_options;
  gap_history m_gaps;    // the thread only
  poll_budget m_budget;  // the thread only: decide(m_gaps, m_options)
  hooks m_hooks;
  std::thread m_thread;
  std::thread::id m_thread_id;
  std::mutex m_mutex;
  std::condition_variable m_cv;
  std::vector<std::function<void()>> m_tasks;  // guarded by m_mutex
  bool m_woken = false;                        // guarded by m_mutex
  bool m_stopping = false;                     // guarded by m_mutex
  // Set (under m_mutex) by every post, wake and stop: the loop takes the mutex only after one,
  // not on every turn (two lock/unlock pairs a turn were 9% of a busy receiver's thread).
  std::atomic<bool> m_signalled{false};
  std::vector<progress_client*> m_clients;  // the thread only
};

}  // namespace offload::detail
