#pragma once
// The CUDA implementations of the kernels, behind a host-only interface (no CUDA headers):
// callers compiled by g++ look them up by name. Each has the contract of kernel::run_cpu:
// `out` is laid out from output_specs(in) and every output element is written. These run
// synchronously on the current device; streams, pinned buffers and batching are the CUDA
// backend's business.

#include <offload/product.hpp>
#include <offload/wire.hpp>

#include <string>
#include <string_view>

namespace offload::kernels::cuda {

using implementation = void (*)(const product_views& in, message_writer& out);

/// The CUDA implementation of kernel `name`, or nullptr.
implementation find(std::string_view name) noexcept;

/// True when a CUDA device can be used; otherwise `why` says what the runtime reported
/// (no driver, no device).
bool device_available(std::string& why);

/// Makes `device` current on the calling thread (cudaSetDevice); throws with CUDA's text.
void use_device(int device);
/// How many devices are visible (0 when the runtime cannot be used).
int device_count() noexcept;
/// One line about `device`: name, SMs, memory, PCI bus id, driver and runtime versions.
std::string device_report(int device);

void echo(const product_views& in, message_writer& out);
void synthetic(const product_views& in, message_writer& out);
void mlp(const product_views& in, message_writer& out);
void clustering(const product_views& in, message_writer& out);

}  // namespace offload::kernels::cuda
