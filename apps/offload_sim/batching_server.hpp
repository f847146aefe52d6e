#pragma once
// A GPU server with dynamic batching, as a simulation component: the receiver's own scheduler
// (src/scheduler/scheduler.hpp, every batching rule once) driven by simulated time. Requests of
// `items` queue, one queue per kind (model) — a batch holds one kind, and the kinds share the
// server's `concurrency` slots, the oldest waiting request first; whenever a slot is free, the
// waiting requests of a kind form a batch as the receiver forms one: `max_batch` (0: no limit),
// else the largest preferred size, else all of them once the oldest has waited `max_wait`;
// one request of each peer (client job) in turn. A batch of b items takes service(b) seconds.

#include "des.hpp"
#include "src/scheduler/scheduler.hpp"

#include <unordered_map>

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
  /// By kind: items per batch (0: no limit) and batches of that kind at once (0: the kinds share
  /// `concurrency`). Kinds past the end: no item limit, shared slots.
  std::vector<std::uint64_t> max_items;
  std::vector<std::uint32_t> instances;
};

class batching_server {
 public:
  using service_fn = std::function<double(std::size_t kind, double items)>;
  using done_fn = std::function<void(double started)>;  ///< called with the time its batch started
  /// Runs a batch of `seconds` of work, then `done` (default: `seconds` of simulated time; a
  /// CPU receiver sharing its host's cores runs it on the host instead).
  using run_fn = std::function<void(double seconds, std::function<void()> done)>;
  batching_server(simulation& s, batching_config c, service_fn service, run_fn run = {});
  /// A request of `items` of `kind` from `peer` arrives now; `done` runs when its batch completes.
  void submit(std::size_t kind, double items, done_fn done, int peer = 0);
  double busy_time() const noexcept { return m_busy; }  ///< seconds with >= 1 batch running
  std::uint64_t batches() const noexcept { return m_batches; }
  std::uint64_t requests() const noexcept { return m_requests; }

 private:
  struct waiting {
    double items;
    done_fn done;
  };
  /// Starts every batch that may start now, and sets a wake-up for the next max_wait.
  void try_start();
  void account();
  detail::sched_time now() const;
  simulation& m_sim;
  batching_config m_cfg;
  service_fn m_service;
  run_fn m_run;
  bool m_own_instances = false;  // some kind has instances of its own: no budget across kinds
  detail::scheduler m_sched;
  std::unordered_map<std::uint64_t, waiting> m_waiting;  // by ticket
  std::uint64_t m_next_ticket = 1;
  std::uint32_t m_running = 0;
  double m_timer = -1;            // when a wake-up is set (< 0: none)
  detail::sched_time m_floor{0};  // the last wake-up's time: now() is never earlier
  double m_busy = 0, m_last = 0;
  std::uint64_t m_batches = 0, m_requests = 0;
};

}  // namespace offload::sim
