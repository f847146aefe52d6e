#pragma once
// The transport a test program's transmitters and receivers use, so that one program is the
// same case over MPI and over gRPC: `--transport grpc` on its command line (ctest's grpc.X
// appends it) makes receiver ranks listen on 127.0.0.1 (any free port) and transmitters reach
// them by address; MPI then only starts the ranks and tells everyone the ports.
#include <offload/grpc.hpp>
#include <offload/mpi.hpp>
#include <offload/receiver.hpp>
#include <offload/runtime.hpp>
#include <offload/transmitter.hpp>

#include <memory>
#include <string>
#include <vector>

namespace offload_test {

class transport {
 public:
  transport(int argc, char** argv) {
    for (int i = 1; i + 1 < argc; ++i)
      if (std::string(argv[i]) == "--transport") m_grpc = std::string(argv[i + 1]) == "grpc";
  }
  bool grpc() const noexcept { return m_grpc; }

  /// A receiver for `peers` sessions (a rank of its own).
  std::unique_ptr<offload::receiver> receiver(offload::runtime& rt, const offload::kernel_registry& kernels,
                                              std::size_t peers, offload::receiver_config cfg = {}) const {
    if (m_grpc)
      return std::make_unique<offload::receiver>(rt, kernels, offload::grpc_listen{"127.0.0.1:0", 2}, peers, cfg);
    return std::make_unique<offload::receiver>(rt, kernels, offload::mpi_link{}, peers, cfg);
  }

  /// Every rank calls this once, receivers after making their receiver (`mine`), before any
  /// transmitter is made: over gRPC every rank learns each rank's port (0: not a receiver).
  void exchange(offload::runtime& rt, const offload::receiver* mine) {
    if (!m_grpc) return;
    int port = mine != nullptr ? mine->port() : 0;
    m_ports.assign(std::size_t(rt.size()), 0);
    rt.call([&] { MPI_Allgather(&port, 1, MPI_INT, m_ports.data(), 1, MPI_INT, offload::comm_of(rt)); });
  }

  /// A transmitter to the receivers of these ranks.
  std::unique_ptr<offload::transmitter> transmitter(offload::runtime& rt, const offload::kernel_registry& kernels,
                                                    const std::vector<int>& ranks,
                                                    offload::transmitter_config cfg = {}) const {
    if (!m_grpc) return std::make_unique<offload::transmitter>(rt, kernels, offload::mpi_link{ranks}, cfg);
    offload::grpc_link to;
    for (int r : ranks) to.addresses.push_back("127.0.0.1:" + std::to_string(m_ports.at(std::size_t(r))));
    return std::make_unique<offload::transmitter>(rt, kernels, to, cfg);
  }

 private:
  bool m_grpc = false;
  std::vector<int> m_ports;
};

}  // namespace offload_test
