#pragma once
// Executors: run the scheduler's batches on a backend, each batch on a thread of its own
// (the usual number of threads is started at once, more as batches need them, and all are
// kept), and hand the replies back to the progress thread. The scheduler decides what runs and how many at once; this
// unit only runs.

#include <offload/host_pool.hpp>
#include "backend.hpp"
#include "src/base/work_queue.hpp"

#include <offload/kernel.hpp>
#include <offload/wire.hpp>

#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace offload::detail {

/// An accepted request.
struct job {
  int peer;
  message request;
  std::uint64_t received_ns;
};

/// Requests for one kernel, run as one launch.
struct job_batch {
  std::size_t queue = 0;  // the scheduler's queue (the kernel's id)
  const kernel* k = nullptr;
  std::vector<job> items;
};

/// A reply ready to go; `in_place` when its outputs were computed in the request's buffer, which
/// it keeps alive.
struct finished_job {
  int peer;
  outgoing_message reply;
  bool is_error;
  bool in_place;
  std::string defect = {};  // the kernel broke its output specs (a `bad_output` reply): how
  // For the per-kernel counters (receiver_stats::kernels): the times of its run (now_ns()),
  // its items, and whether it is the first answer of its batch (one execution per batch).
  const kernel* k = nullptr;
  std::uint64_t received_ns = 0, taken_ns = 0, start_ns = 0, end_ns = 0, items = 0;
  bool first_of_batch = false;
};

struct finished_batch {
  std::size_t queue;
  std::vector<finished_job> replies;
};

class executors {
 public:
  /// `usage(running_delta, items)`: the receiver's utilisation accounting (a batch of `items`
  /// starts: +1; it ends: -1), called from any thread. `wake()`: tells the progress thread that
  /// a batch finished. `threads`: started now (a process's memory then reaches its working size
  /// at start, not whenever a burst first needs another thread).
  using usage_fn = std::function<void(long running_delta, std::uint64_t items)>;
  executors(backend& be, host_pool& pool, usage_fn usage, std::function<void()> wake, std::size_t threads);
  ~executors();
  executors(const executors&) = delete;
  executors& operator=(const executors&) = delete;

  /// Hands a batch to a free thread, starting one when none is free (progress thread).
  void start(job_batch b);
  /// The batches that finished since the last call, with their replies.
  std::vector<finished_batch> take_finished();
  /// Runs a batch on the calling thread and returns its replies (the kernel's errors too).
  std::vector<finished_job> run(job_batch& b);
  std::size_t threads() const noexcept { return m_threads.size(); }

 private:
  void work();
  backend& m_be;
  host_pool& m_pool;
  usage_fn m_usage;
  std::function<void()> m_wake;
  work_queue<job_batch> m_queue;
  std::vector<std::thread> m_threads;
  std::size_t m_busy = 0;  // batches handed out and not finished (progress thread)
  std::mutex m_finished_mutex;
  std::vector<finished_batch> m_finished;
};

}  // namespace offload::detail
