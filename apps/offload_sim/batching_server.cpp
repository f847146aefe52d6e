#include "batching_server.hpp"

#include <algorithm>
#include <memory>

namespace offload::sim {

batching_server::batching_server(simulation& s, batching_config c, service_fn service, run_fn run)
    : m_sim(s), m_cfg(std::move(c)), m_service(std::move(service)), m_run(std::move(run)) {
  if (!m_run) m_run = [this](double seconds, std::function<void()> done) { m_sim.after(seconds, std::move(done)); };
  std::sort(m_cfg.preferred.begin(), m_cfg.preferred.end());
}

void batching_server::account() {
  if (m_running > 0) m_busy += m_sim.now() - m_last;
  m_last = m_sim.now();
}

void batching_server::submit(std::size_t kind, double items, done_fn done) {
  if (kind >= m_queues.size()) {
    m_queues.resize(kind + 1);
    m_timer.resize(kind + 1, false);
  }
  m_queues[kind].push_back({m_sim.now(), items, std::move(done)});
  try_start();
}

void batching_server::try_start() {
  while (m_running < m_cfg.concurrency) {
    // The kinds with requests waiting, oldest first; start the first that may go.
    std::vector<std::size_t> kinds;
    for (std::size_t k = 0; k < m_queues.size(); ++k)
      if (!m_queues[k].empty()) kinds.push_back(k);
    std::sort(kinds.begin(), kinds.end(),
              [&](std::size_t a, std::size_t b) { return m_queues[a].front().arrived < m_queues[b].front().arrived; });
    bool started = false;
    for (auto k : kinds)
      if ((started = start_one(k))) break;
    if (!started) return;
  }
}

bool batching_server::start_one(std::size_t kind) {
  auto& queue = m_queues[kind];
  const std::size_t queued = queue.size();
  const std::size_t cap = m_cfg.max_batch ? std::min<std::size_t>(queued, m_cfg.max_batch) : queued;
  std::size_t n = 0;
  for (auto p : m_cfg.preferred)
    if (p <= cap) n = p;
  const bool full = m_cfg.max_batch && queued >= m_cfg.max_batch;
  if (n == 0) {
    const double age = m_sim.now() - queue.front().arrived;
    if (!full && m_cfg.max_wait > 0 && age < m_cfg.max_wait) {
      if (!m_timer[kind]) {  // come back when the oldest request has waited max_wait
        m_timer[kind] = true;
        m_sim.after(m_cfg.max_wait - age, [this, kind] {
          m_timer[kind] = false;
          try_start();
        });
      }
      return false;
    }
    n = cap;
  }
  auto batch = std::make_shared<std::vector<done_fn>>();
  double items = 0;
  for (std::size_t i = 0; i < n; ++i) {
    items += queue.front().items;
    batch->push_back(std::move(queue.front().done));
    queue.pop_front();
  }
  account();
  ++m_running;
  ++m_batches;
  m_requests += n;
  m_run(m_service(kind, items), [this, batch, started = m_sim.now()] {
    account();
    --m_running;
    for (auto& d : *batch) d(started);
    try_start();
  });
  return true;
}

}  // namespace offload::sim
