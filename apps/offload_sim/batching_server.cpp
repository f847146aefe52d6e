#include "batching_server.hpp"

#include <algorithm>
#include <cmath>
#include <memory>

namespace offload::sim {

batching_server::batching_server(simulation& s, batching_config c, service_fn service, run_fn run)
    : m_sim(s),
      m_cfg(std::move(c)),
      m_service(std::move(service)),
      m_run(std::move(run)),
      // Kinds with instances of their own run beside each other: no budget across kinds then.
      m_own_instances(
          std::any_of(m_cfg.instances.begin(), m_cfg.instances.end(), [](std::uint32_t n) { return n > 0; })),
      m_sched(m_own_instances ? 0 : m_cfg.concurrency) {
  if (!m_run) m_run = [this](double seconds, std::function<void()> done) { m_sim.after(seconds, std::move(done)); };
}

detail::sched_time batching_server::now() const {
  // (Never before a wake-up's own time, which rounding to nanoseconds could undercut.)
  return std::max(detail::sched_time(std::llround(m_sim.now() * 1e9)), m_floor);
}

void batching_server::account() {
  if (m_running > 0) m_busy += m_sim.now() - m_last;
  m_last = m_sim.now();
}

void batching_server::submit(std::size_t kind, double items, done_fn done, int peer) {
  while (m_sched.queues() <= kind) {
    detail::queue_rules rules;
    rules.batching.max_batch = m_cfg.max_batch;
    rules.batching.preferred = m_cfg.preferred;
    rules.batching.max_wait = detail::sched_time(std::llround(m_cfg.max_wait * 1e9));
    const auto k = m_sched.queues();
    if (k < m_cfg.max_items.size()) rules.batching.max_batch_items = m_cfg.max_items[k];
    // 0: the kinds share the server's slots (the scheduler's budget); else each has its own
    // instances (its configured count, else the server's concurrency).
    rules.instances = !m_own_instances                                       ? 0
                      : k < m_cfg.instances.size() && m_cfg.instances[k] > 0 ? m_cfg.instances[k]
                                                                             : m_cfg.concurrency;
    m_sched.add_queue(std::move(rules));
  }
  const auto ticket = m_next_ticket++;
  m_waiting.emplace(ticket, waiting{items, std::move(done)});
  // The scheduler counts whole items (a request of 0 items still takes a place in a batch).
  const auto n = std::max<std::uint64_t>(1, std::uint64_t(std::llround(items)));
  m_sched.push(kind, {ticket, peer, n, 0, detail::no_deadline}, now());
  try_start();
}

void batching_server::try_start() {
  while (auto b = m_sched.next(now())) {
    auto batch = std::make_shared<std::vector<done_fn>>();
    double items = 0;
    for (auto t : b->tickets) {
      auto it = m_waiting.find(t);
      items += it->second.items;
      batch->push_back(std::move(it->second.done));
      m_waiting.erase(it);
    }
    account();
    ++m_running;
    ++m_batches;
    m_requests += b->tickets.size();
    m_run(m_service(b->queue, items), [this, batch, queue = b->queue, started = m_sim.now()] {
      account();
      --m_running;
      m_sched.finished(queue);
      for (auto& d : *batch) d(started);
      try_start();
    });
  }
  // Come back when the oldest request has waited max_wait (unless a wake-up is set by then).
  const auto wake = m_sched.wake_by();
  if (wake == detail::no_deadline) return;
  const double at = 1e-9 * double(wake.count());
  if (m_timer >= m_sim.now() && m_timer <= at) return;
  m_timer = at;
  m_sim.after(std::max(0.0, at - m_sim.now()), [this, at, wake] {
    if (m_timer == at) m_timer = -1;
    m_floor = std::max(m_floor, wake);
    try_start();
  });
}

}  // namespace offload::sim
