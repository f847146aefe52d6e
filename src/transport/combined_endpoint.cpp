// One receiver endpoint over several (listen_all, offload/transport.hpp): peer p of endpoint i
// is peer p * n + i here, so that every peer of every transport has its own number and the
// receiver's sessions, credits and scheduler treat them alike.
#include "transport.hpp"

#include <offload/runtime.hpp>

#include <algorithm>
#include <stdexcept>

namespace offload::detail {
namespace {

class combined_endpoint final : public endpoint {
 public:
  combined_endpoint(host_pool& pool, std::uint64_t max_receive, std::vector<std::unique_ptr<endpoint>> eps)
      : endpoint(pool, max_receive), m_eps(std::move(eps)), m_n(int(m_eps.size())) {}

  std::optional<incoming> receive() override {
    // In turn, so that a busy transport does not starve another.
    for (int k = 0; k < m_n; ++k) {
      const int i = (m_next + k) % m_n;
      if (auto in = m_eps[std::size_t(i)]->receive()) {
        m_next = (i + 1) % m_n;
        in->source = in->source * m_n + i;
        return in;
      }
    }
    return std::nullopt;
  }
  std::string describe(int peer) const override { return of(peer).describe(peer / m_n); }
  int port() const noexcept override { return m_eps.front()->port(); }
  std::vector<int> ports() const override {
    std::vector<int> out;
    for (const auto& e : m_eps) out.push_back(e->port());
    return out;
  }
  void forget(int peer) override { of(peer).forget(peer / m_n); }
  bool expected(int peer) const override { return of(peer).expected(peer / m_n); }
  bool reconnect(int peer) override { return of(peer).reconnect(peer / m_n); }
  std::optional<client_identity> client_of(int peer) const override { return of(peer).client_of(peer / m_n); }
  void drain() override {
    for (auto& e : m_eps) e->drain();
  }
  std::uint64_t unauthenticated() const override {
    std::uint64_t n = 0;
    for (const auto& e : m_eps) n += e->unauthenticated();
    return n;
  }
  std::chrono::steady_clock::time_point next_release() const noexcept override {
    auto next = std::chrono::steady_clock::time_point::max();
    for (const auto& e : m_eps) next = std::min(next, e->next_release());
    return next;
  }

 protected:
  void post(outgoing o) override {
    auto& e = of(o.dest);
    o.dest /= m_n;
    e.send(std::move(o));
  }
  bool complete_sends() override {
    bool any = false;
    for (auto& e : m_eps) any = e->progress_sends() || any;
    return any;
  }
  std::size_t posted_sends() const noexcept override {
    std::size_t n = 0;
    for (const auto& e : m_eps) n += e->pending_sends();
    return n;
  }
  std::size_t abandon_posted(int dest) override { return of(dest).abandon(dest / m_n); }

 private:
  endpoint& of(int peer) const { return *m_eps[std::size_t(peer % m_n)]; }
  std::vector<std::unique_ptr<endpoint>> m_eps;
  int m_n;
  int m_next = 0;
};

class combined_transport final : public transport_impl {
 public:
  explicit combined_transport(listen_all all) : m_all(std::move(all)) {
    if (m_all.each.empty()) throw std::invalid_argument("listen_all needs at least one transport");
  }
  std::unique_ptr<endpoint> connect(runtime&, const endpoint_settings&, std::vector<int>&) const override {
    throw std::invalid_argument("listen_all is how a receiver serves on several transports, not a transmitter's link");
  }
  listening listen(runtime& rt, const endpoint_settings& s) const override {
    std::vector<std::unique_ptr<endpoint>> eps;
    std::string name;
    for (const auto& t : m_all.each) {
      auto l = t.impl().listen(rt, s);
      name += (name.empty() ? "" : " and ") + l.name;
      eps.push_back(std::move(l.ep));
    }
    if (eps.size() == 1) return {std::move(eps.front()), std::move(name)};
    return {std::make_unique<combined_endpoint>(s.pool, s.max_receive_bytes, std::move(eps)), std::move(name)};
  }

 private:
  listen_all m_all;
};

}  // namespace
}  // namespace offload::detail

namespace offload {
transport::transport(const listen_all& all) : m_impl(std::make_shared<detail::combined_transport>(all)) {}
}  // namespace offload
