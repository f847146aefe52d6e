#include "des.hpp"

namespace offload::sim {

void simulation::run(double until) {
  while (!m_queue.empty() && m_queue.top().t <= until) {
    // (top() is const: move the action out through a copy of the entry's handle)
    auto e = m_queue.top();
    m_queue.pop();
    m_now = e.t;
    ++m_run;
    e.a();
  }
}

}  // namespace offload::sim
