// The emulated link (offload/emulation.hpp): a transport whose endpoints wrap those of another.
// Sends wait here until their release time (link_schedule), received messages until they are
// through the site link; everything else is the inner endpoint's.
#include "link_schedule.hpp"
#include "src/base/clock.hpp"
#include "src/transport/transport.hpp"

#include <offload/emulation.hpp>

#include <cmath>
#include <deque>
#include <limits>
#include <map>
#include <stdexcept>

namespace offload {
namespace {

using steady = std::chrono::steady_clock;

class emulated_endpoint final : public detail::endpoint {
 public:
  emulated_endpoint(std::unique_ptr<detail::endpoint> inner, const detail::endpoint_settings& s,
                    const link_emulation& sends, double site_link_bps)
      : endpoint(s.pool, s.max_receive_bytes),
        m_inner(std::move(inner)),
        m_schedule(sends),
        m_site_bps(site_link_bps) {}

  std::optional<detail::incoming> receive() override {
    if (m_site_bps <= 0) return m_inner->receive();
    // Everything that arrived enters the site link now, one message after another at its rate
    // (the end of a connection too, so that it stays behind that peer's messages).
    const auto now = steady::now();
    for (int i = 0; i < 64; ++i) {
      auto in = m_inner->receive();
      if (!in) break;
      const auto wire = std::chrono::duration_cast<steady::duration>(
          std::chrono::duration<double>(8.0 * double(in->size) / m_site_bps));
      m_site_free = std::max(m_site_free, now) + wire;
      m_site.emplace_back(m_site_free, std::move(*in));
    }
    if (m_site.empty() || m_site.front().first > now) return std::nullopt;
    auto in = std::move(m_site.front().second);
    m_site.pop_front();
    return in;
  }
  std::string describe(int peer) const override { return m_inner->describe(peer); }
  int port() const noexcept override { return m_inner->port(); }
  std::vector<int> ports() const override { return m_inner->ports(); }
  bool expected(int peer) const override { return m_inner->expected(peer); }
  void forget(int peer) override { m_inner->forget(peer); }
  bool reconnect(int peer) override { return m_inner->reconnect(peer); }
  std::optional<client_identity> client_of(int peer) const override { return m_inner->client_of(peer); }
  std::uint64_t unauthenticated() const override { return m_inner->unauthenticated(); }
  void drain() override { m_inner->drain(); }
  steady::time_point next_release() const noexcept override {
    std::int64_t next = std::numeric_limits<std::int64_t>::max();
    for (const auto& [dest, queue] : m_delayed)
      if (!queue.empty()) next = std::min(next, queue.front().release_ns);
    auto t = next == std::numeric_limits<std::int64_t>::max() ? steady::time_point::max()
                                                              : steady::time_point(std::chrono::nanoseconds(next));
    if (!m_site.empty()) t = std::min(t, m_site.front().first);
    return std::min(t, m_inner->next_release());
  }

 protected:
  void post(detail::outgoing o) override {
    if (!m_schedule.active()) {
      m_inner->send(std::move(o));
      return;
    }
    const auto release = m_schedule.release(o.dest, o.m.total_size, std::int64_t(detail::now_ns()));
    m_delayed[o.dest].push_back({release, std::move(o)});
    ++m_delayed_count;
  }
  bool complete_sends() override {
    bool any = false;
    if (m_delayed_count > 0) {
      const auto now = std::int64_t(detail::now_ns());
      for (auto& [dest, queue] : m_delayed) {
        while (!queue.empty() && queue.front().release_ns <= now) {
          m_inner->send(std::move(queue.front().o));
          queue.pop_front();
          --m_delayed_count;
          any = true;
        }
      }
    }
    return m_inner->progress_sends() || any;
  }
  std::size_t posted_sends() const noexcept override { return m_delayed_count + m_inner->pending_sends(); }
  std::size_t abandon_posted(int dest) override {
    std::size_t n = 0;
    if (auto it = m_delayed.find(dest); it != m_delayed.end()) {
      n = it->second.size();
      m_delayed_count -= n;
      m_delayed.erase(it);
    }
    return n + m_inner->abandon(dest);
  }

 private:
  struct delayed {
    std::int64_t release_ns;
    detail::outgoing o;
  };
  std::unique_ptr<detail::endpoint> m_inner;
  detail::link_schedule m_schedule;
  std::map<int, std::deque<delayed>> m_delayed;  // per destination, in release order
  std::size_t m_delayed_count = 0;
  double m_site_bps;
  steady::time_point m_site_free{};                                    // when the site link is free
  std::deque<std::pair<steady::time_point, detail::incoming>> m_site;  // on the site link, in order
};

class emulated_transport final : public detail::transport_impl {
 public:
  emulated_transport(transport inner, const link_emulation& sends, double site_link_bps)
      : m_inner(std::move(inner)), m_sends(sends), m_site_bps(site_link_bps) {}
  std::unique_ptr<detail::endpoint> connect(runtime& rt, const detail::endpoint_settings& s,
                                            std::vector<int>& receivers) const override {
    return std::make_unique<emulated_endpoint>(m_inner.impl().connect(rt, s, receivers), s, m_sends, m_site_bps);
  }
  listening listen(runtime& rt, const detail::endpoint_settings& s) const override {
    auto l = m_inner.impl().listen(rt, s);
    l.ep = std::make_unique<emulated_endpoint>(std::move(l.ep), s, m_sends, m_site_bps);
    return l;
  }

 private:
  transport m_inner;
  link_emulation m_sends;
  double m_site_bps;
};

}  // namespace

transport emulated_link(transport inner, const link_emulation& sends, double site_link_bps) {
  if (!(site_link_bps >= 0) || !std::isfinite(site_link_bps))
    throw std::invalid_argument("an emulated site link's rate must be zero or a finite positive number of bits/s");
  if (sends.latency.count() < 0 || sends.jitter.count() < 0 || !(sends.bandwidth_bps >= 0) ||
      !std::isfinite(sends.bandwidth_bps))
    throw std::invalid_argument("an emulated link's latency, jitter and bandwidth must be zero or positive");
  return transport(std::make_shared<emulated_transport>(std::move(inner), sends, site_link_bps));
}

}  // namespace offload
