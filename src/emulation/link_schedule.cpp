#include "link_schedule.hpp"

#include <algorithm>
#include <cmath>

namespace offload::detail {

link_schedule::link_schedule(const link_emulation& e, std::uint64_t seed) : m_e(e), m_rng(seed) {}

std::int64_t link_schedule::release(int dest, std::uint64_t bytes, std::int64_t now_ns) {
  link& l = m_links[dest];
  std::int64_t t = now_ns;
  if (m_e.bandwidth_bps > 0) {
    const auto wire_ns = static_cast<std::int64_t>(std::llround(double(bytes) * 8.0 * 1e9 / m_e.bandwidth_bps));
    l.wire_free = std::max(l.wire_free, now_ns) + wire_ns;
    t = l.wire_free;
  }
  std::int64_t delay = m_e.latency.count();
  if (m_e.jitter.count() > 0) {
    // splitmix64 → uniform in [-jitter, +jitter]
    std::uint64_t z = (m_rng += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    const double u = double(z >> 11) * 0x1.0p-53;
    delay += static_cast<std::int64_t>(std::llround((2.0 * u - 1.0) * double(m_e.jitter.count())));
  }
  t += std::max<std::int64_t>(0, delay);
  l.last_release = std::max(l.last_release, t);
  return l.last_release;
}

}  // namespace offload::detail
