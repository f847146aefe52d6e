#pragma once
// The transmitter's KServe v2 transport (client.cpp): an endpoint whose receivers are KServe v2
// servers. No gRPC header here.

#include "src/transport/endpoint.hpp"

#include <offload/kernel.hpp>
#include <offload/kserve.hpp>

#include <functional>
#include <memory>

namespace offload::detail {

/// Receiver i is `link.addresses[i]`; `kernels` are the transmitter's (their io() gives the
/// tensors' shapes); `host` this host's name (runtime::host). Throws std::invalid_argument for
/// bad settings.
std::unique_ptr<endpoint> make_kserve_client(const kserve_link& link, const kernel_registry& kernels, host_pool& pool,
                                             const wire_limits& limits, std::string host, std::function<void()> wake);

}  // namespace offload::detail
