#pragma once
// The KServe v2 front end of a receiver (server.cpp): an endpoint whose peers are KServe v2
// clients. No gRPC header here.

#include "src/transport/endpoint.hpp"

#include <offload/kernel.hpp>
#include <offload/kserve.hpp>

#include <functional>
#include <memory>

namespace offload::detail {

/// Listens on `listen.address` and serves `kernels` that declare their tensors (kernel::io) as
/// models; messages over `limits` are refused before they reach the receiver. `wake` wakes the
/// progress thread. Throws std::runtime_error when it cannot listen.
std::unique_ptr<endpoint> make_kserve_server(const kserve_listen& listen, const kernel_registry& kernels,
                                             host_pool& pool, const wire_limits& limits, std::function<void()> wake);

}  // namespace offload::detail
