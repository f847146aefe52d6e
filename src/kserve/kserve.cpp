// kserve_link and kserve_listen as transport values (offload/kserve.hpp).
#include "client.hpp"
#include "server.hpp"

#include "src/transport/transport.hpp"

#include <stdexcept>

namespace offload {
namespace detail {
namespace {

class kserve_server_transport final : public transport_impl {
 public:
  explicit kserve_server_transport(kserve_listen l) : m_listen(std::move(l)) {}
  std::unique_ptr<endpoint> connect(runtime&, const endpoint_settings&, std::vector<int>&) const override {
    throw std::invalid_argument("kserve_listen is how a receiver serves KServe v2 clients, not a transmitter's link");
  }
  listening listen(runtime& rt, const endpoint_settings& s) const override {
    if (s.kernels == nullptr) throw std::invalid_argument("the KServe v2 front end needs the receiver's kernels");
    auto ep = make_kserve_server(m_listen, *s.kernels, s.pool, s.limits, [&rt] { rt.wake(); });
    auto name = "KServe v2 receiver at " + m_listen.address.substr(0, m_listen.address.rfind(':')) + ":" +
                std::to_string(ep->port());
    return {std::move(ep), std::move(name)};
  }

 private:
  kserve_listen m_listen;
};

class kserve_client_transport final : public transport_impl {
 public:
  explicit kserve_client_transport(kserve_link l) : m_link(std::move(l)) {}
  std::unique_ptr<endpoint> connect(runtime& rt, const endpoint_settings& s,
                                    std::vector<int>& receivers) const override {
    if (s.kernels == nullptr) throw std::invalid_argument("the KServe v2 transport needs the transmitter's kernels");
    receivers.resize(m_link.addresses.size());
    for (std::size_t i = 0; i < receivers.size(); ++i) receivers[i] = static_cast<int>(i);
    return make_kserve_client(m_link, *s.kernels, s.pool, s.limits, rt.host(), [&rt] { rt.wake(); });
  }
  listening listen(runtime&, const endpoint_settings&) const override {
    throw std::invalid_argument("kserve_link names a transmitter's servers; a receiver serves with kserve_listen");
  }

 private:
  kserve_link m_link;
};

}  // namespace
}  // namespace detail

kserve_link::operator transport() const {
  return transport(std::make_shared<const detail::kserve_client_transport>(*this));
}

kserve_listen::operator transport() const {
  return transport(std::make_shared<const detail::kserve_server_transport>(*this));
}

}  // namespace offload
