#pragma once
// A GPU server with dynamic batching, as a simulation component: requests of `items` queue, one
// queue per kind (model) — a batch holds one kind, and the kinds share the server's slots, the
// oldest waiting request first; whenever one of its `concurrency` slots is free, it takes the
// waiting requests of a kind as one batch:
// all of them up to `max_batch` (0: no limit) when a preferred size cannot be formed, the
// largest preferred size that can; with `max_wait` > 0 a batch smaller than max_batch (and
// than every preferred size) waits until its first request is that old. A batch of b items
// takes service(b) seconds.

#include "des.hpp"

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <vector>

namespace offload::sim {

struct batching_config {
  std::uint32_t concurrency = 1;
  std::uint32_t max_batch = 0;  ///< requests per batch; 0: no limit
  std::vector<std::uint32_t> preferred;
  double max_wait = 0;  ///< seconds
};

class batching_server {
 public:
  using service_fn = std::function<double(std::size_t kind, double items)>;
  using done_fn = std::function<void(double started)>;  ///< called with the time its batch started
  /// Runs a batch of `seconds` of work, then `done` (default: `seconds` of simulated time; a
  /// CPU receiver sharing its host's cores runs it on the host instead).
  using run_fn = std::function<void(double seconds, std::function<void()> done)>;
  batching_server(simulation& s, batching_config c, service_fn service, run_fn run = {});
  /// A request of `items` of `kind` arrives now; `done` runs when its batch completes.
  void submit(std::size_t kind, double items, done_fn done);
  double busy_time() const noexcept { return m_busy; }  ///< seconds with >= 1 batch running
  std::uint64_t batches() const noexcept { return m_batches; }
  std::uint64_t requests() const noexcept { return m_requests; }

 private:
  struct waiting {
    double arrived;
    double items;
    done_fn done;
  };
  void try_start();
  /// Starts a batch of `kind` if one may go now; false when none may (a timer may be set).
  bool start_one(std::size_t kind);
  void account();
  simulation& m_sim;
  batching_config m_cfg;
  service_fn m_service;
  run_fn m_run;
  std::vector<std::deque<waiting>> m_queues;  // by kind
  std::uint32_t m_running = 0;
  std::vector<bool> m_timer;  // by kind: a max_wait wake-up is pending
  double m_busy = 0, m_last = 0;
  std::uint64_t m_batches = 0, m_requests = 0;
};

}  // namespace offload::sim
