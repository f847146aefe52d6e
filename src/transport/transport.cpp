#include "transport.hpp"

#include "grpc_endpoint.hpp"
#include "mpi_endpoint.hpp"

#include <offload/grpc.hpp>
#include <offload/mpi.hpp>

#include <stdexcept>

namespace offload {
namespace detail {
namespace {

class mpi_transport final : public transport_impl {
 public:
  explicit mpi_transport(mpi_link l) : m_link(std::move(l)) {}
  std::unique_ptr<endpoint> connect(runtime& rt, const endpoint_settings& s,
                                    std::vector<int>& receivers) const override {
    receivers = m_link.ranks;
    return open(rt, s);
  }
  listening listen(runtime& rt, const endpoint_settings& s) const override {
    if (!m_link.ranks.empty())
      throw std::invalid_argument("a receiver serves whichever ranks say hello: leave mpi_link::ranks empty");
    return {open(rt, s), "receiver rank " + std::to_string(rt.rank())};
  }

 private:
  std::unique_ptr<endpoint> open(runtime& rt, const endpoint_settings& s) const {
    const MPI_Comm comm = m_link.comm != MPI_COMM_NULL ? m_link.comm : comm_of(rt);
    if (comm == MPI_COMM_NULL) throw std::invalid_argument("the MPI transport needs MPI: this runtime runs without it");
    return std::make_unique<mpi_endpoint>(comm, s.pool, s.max_receive_bytes, m_link.blocking_receive_below,
                                          m_link.parts_from);
  }
  mpi_link m_link;
};

class grpc_client_transport final : public transport_impl {
 public:
  explicit grpc_client_transport(grpc_link l) : m_link(std::move(l)) {}
  std::unique_ptr<endpoint> connect(runtime& rt, const endpoint_settings& s,
                                    std::vector<int>& receivers) const override {
    receivers.resize(m_link.addresses.size());
    for (std::size_t i = 0; i < receivers.size(); ++i) receivers[i] = static_cast<int>(i);
    return make_grpc_client(m_link, s.pool, s.max_receive_bytes, [&rt] { rt.wake(); });
  }
  listening listen(runtime&, const endpoint_settings&) const override {
    throw std::invalid_argument("grpc_link names a transmitter's receivers; a receiver listens with grpc_listen");
  }

 private:
  grpc_link m_link;
};

class grpc_server_transport final : public transport_impl {
 public:
  explicit grpc_server_transport(grpc_listen l) : m_listen(std::move(l)) {}
  std::unique_ptr<endpoint> connect(runtime&, const endpoint_settings&, std::vector<int>&) const override {
    throw std::invalid_argument("grpc_listen is how a receiver serves; a transmitter reaches receivers with grpc_link");
  }
  listening listen(runtime& rt, const endpoint_settings& s) const override {
    auto ep = make_grpc_server(m_listen, s.pool, s.max_receive_bytes, s.max_queued_sends, [&rt] { rt.wake(); });
    auto name =
        "receiver at " + m_listen.address.substr(0, m_listen.address.rfind(':')) + ":" + std::to_string(ep->port());
    return {std::move(ep), std::move(name)};
  }

 private:
  grpc_listen m_listen;
};

}  // namespace
}  // namespace detail

transport::transport(const mpi_link& link) : m_impl(std::make_shared<detail::mpi_transport>(link)) {}
transport::transport(const grpc_link& link) : m_impl(std::make_shared<detail::grpc_client_transport>(link)) {}
transport::transport(const grpc_listen& listen) : m_impl(std::make_shared<detail::grpc_server_transport>(listen)) {}

}  // namespace offload
