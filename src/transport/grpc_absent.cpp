// A build without gRPC (OFFLOAD_GRPC=OFF, or no gRPC package found): the transport is absent,
// and asking for it says so.
#include "grpc_endpoint.hpp"

namespace offload::detail {

namespace {
[[noreturn]] void absent() {
  throw grpc_unavailable(
      "this build has no gRPC transport (configured with OFFLOAD_GRPC=OFF, or gRPC's CMake package "
      "was not found: install libgrpc++-dev and reconfigure)");
}
}  // namespace

std::unique_ptr<endpoint> make_grpc_client(const grpc_link&, host_pool&, std::uint64_t, std::function<void()>) {
  absent();
}

std::unique_ptr<endpoint> make_grpc_server(const grpc_listen&, host_pool&, std::uint64_t, std::size_t,
                                           std::function<void()>) {
  absent();
}

}  // namespace offload::detail
