#pragma once
// The discrete-event core of offload-sim: a clock and a queue of timed actions, run in time
// order (ties in the order they were scheduled, so that a run is deterministic).

#include <cstdint>
#include <functional>
#include <queue>
#include <vector>

namespace offload::sim {

class simulation {
 public:
  using action = std::function<void()>;
  /// Simulated seconds since the start.
  double now() const noexcept { return m_now; }
  /// Runs `a` at now() + `delay` (delay >= 0).
  void after(double delay, action a) { m_queue.push({m_now + delay, m_next++, std::move(a)}); }
  /// Runs actions in time order until none is left or the clock would pass `until`.
  void run(double until);
  std::uint64_t events_run() const noexcept { return m_run; }

 private:
  struct entry {
    double t;
    std::uint64_t seq;
    action a;
    bool operator>(const entry& o) const { return t != o.t ? t > o.t : seq > o.seq; }
  };
  double m_now = 0;
  std::uint64_t m_next = 0, m_run = 0;
  std::priority_queue<entry, std::vector<entry>, std::greater<>> m_queue;
};

}  // namespace offload::sim
