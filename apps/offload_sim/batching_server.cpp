#include "batching_server.hpp"

#include <algorithm>
#include <memory>

namespace offload::sim {

batching_server::batching_server(simulation& s, batching_config c, service_fn service)
    : m_sim(s), m_cfg(std::move(c)), m_service(std::move(service)) {
  std::sort(m_cfg.preferred.begin(), m_cfg.preferred.end());
}

void batching_server::account() {
  if (m_running > 0) m_busy += m_sim.now() - m_last;
  m_last = m_sim.now();
}

void batching_server::submit(double items, done_fn done) {
  m_queue.push_back({m_sim.now(), items, std::move(done)});
  try_start();
}

void batching_server::try_start() {
  while (m_running < m_cfg.concurrency && !m_queue.empty()) {
    const std::size_t queued = m_queue.size();
    const std::size_t cap = m_cfg.max_batch ? std::min<std::size_t>(queued, m_cfg.max_batch) : queued;
    std::size_t n = 0;
    for (auto p : m_cfg.preferred)
      if (p <= cap) n = p;
    const bool full = m_cfg.max_batch && queued >= m_cfg.max_batch;
    if (n == 0) {
      const double age = m_sim.now() - m_queue.front().arrived;
      if (!full && m_cfg.max_wait > 0 && age < m_cfg.max_wait) {
        if (!m_timer) {  // come back when the oldest request has waited max_wait
          m_timer = true;
          m_sim.after(m_cfg.max_wait - age, [this] {
            m_timer = false;
            try_start();
          });
        }
        return;
      }
      n = cap;
    }
    auto batch = std::make_shared<std::vector<done_fn>>();
    double items = 0;
    for (std::size_t i = 0; i < n; ++i) {
      items += m_queue.front().items;
      batch->push_back(std::move(m_queue.front().done));
      m_queue.pop_front();
    }
    account();
    ++m_running;
    ++m_batches;
    m_requests += n;
    m_sim.after(m_service(items), [this, batch] {
      account();
      --m_running;
      for (auto& d : *batch) d();
      try_start();
    });
  }
}

}  // namespace offload::sim
