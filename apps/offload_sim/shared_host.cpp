#include "shared_host.hpp"

#include <algorithm>
#include <limits>

namespace offload::sim {

shared_host::shared_host(simulation& s, double cores, double fixed_load)
    : m_sim(s), m_cores(std::max(0.1, cores - fixed_load)) {}

double shared_host::rate() const {
  return m_running.empty() ? 1.0 : std::min(1.0, m_cores / double(m_running.size()));
}

void shared_host::advance() {
  const double done = (m_sim.now() - m_last) * rate();
  for (auto& w : m_running) w.remaining -= done;
  m_last = m_sim.now();
}

void shared_host::start(double cpu_seconds, std::function<void()> done) {
  advance();
  m_running.push_back({cpu_seconds, std::move(done)});
  reschedule();
}

void shared_host::reschedule() {
  ++m_gen;
  if (m_running.empty()) return;
  double first = std::numeric_limits<double>::infinity();
  for (const auto& w : m_running) first = std::min(first, w.remaining);
  m_sim.after(std::max(0.0, first) / rate(), [this, gen = m_gen] { finish(gen); });
}

void shared_host::finish(std::uint64_t gen) {
  if (gen != m_gen) return;  // the running set changed since this timer was set
  advance();
  std::vector<std::function<void()>> finished;
  const double eps = 1e-9;  // a nanosecond of CPU: less would not move a clock of ~10^6 s (it could loop)
  auto it = std::stable_partition(m_running.begin(), m_running.end(), [&](const work& w) { return w.remaining > eps; });
  for (auto f = it; f != m_running.end(); ++f) finished.push_back(std::move(f->done));
  m_running.erase(it, m_running.end());
  reschedule();
  for (auto& d : finished) d();  // (each may start more work: start() reschedules)
}

}  // namespace offload::sim
