#pragma once
// Runs kernels' CUDA implementations, behind a host-only interface (no CUDA headers) for
// callers compiled by g++. `run` has the contract of kernel::run_cpu: `out`
// is laid out from output_specs(in) and every output element is written. It runs on the
// current device on the calling thread's own stream (so several threads overlap their copies
// and kernels), staging through that thread's pinned buffer and device arena, and returns
// when the outputs are in `out`.

#include <offload/host_pool.hpp>
#include <offload/kernel.hpp>

#include <memory>

#include <string>
#include <string_view>
#include <vector>

namespace offload::kernels::cuda {

/// The CUDA implementation of `k`: its own (kernel::cuda), or for a built-in kernel the one in
/// this folder (echo.cu, synthetic.cu, mlp.cu, clustering.cu), so that the kernel layer itself
/// needs no CUDA; nullptr when it has none.
const cuda_implementation* implementation(const kernel& k) noexcept;

/// Runs `k`'s CUDA implementation (`implementation(k)`, see above). Throws std::invalid_argument when it has none,
/// offload::cuda_error naming the CUDA call that failed.
void run(const kernel& k, const product_views& in, message_writer& out);

/// Whether `p` lies in page-locked host memory (cudaHostRegister, cudaMallocHost): `run` copies
/// such inputs and outputs directly, without its staging buffer.
bool is_pinned(const void* p) noexcept;
/// A host_pool pinner that page-locks blocks with cudaHostRegister (portable to every device);
/// the CUDA backend sets it on its receiver's pool.
std::shared_ptr<host_pool::pinner> host_pinner();

/// Host<->device copy rates (bytes/s) of `bytes` from a pinned host_pool block and from
/// pageable memory, over `reps` copies each after a warm-up.
struct copy_rates {
  bool pinned_pool = false;  ///< the pool's block was pinned (cudaHostRegister succeeded)
  double h2d_pooled = 0, d2h_pooled = 0, h2d_pageable = 0, d2h_pageable = 0;
};
copy_rates measure_copy_rates(std::size_t bytes, int reps);

/// True when a CUDA device can be used; otherwise `why` says what the runtime reported
/// (no driver, no device).
bool device_available(std::string& why);

/// Makes `device` current on the calling thread (cudaSetDevice); throws with CUDA's text.
void use_device(int device);
/// How many devices are visible (0 when the runtime cannot be used).
int device_count() noexcept;
/// The CUDA runtime this build uses and the driver's version ("none" without a driver); needs no device.
std::string versions() noexcept;
/// One line about `device`: name, SMs, memory, PCI bus id, driver and runtime versions.
std::string device_report(int device);

/// Rates measured on the current device.
struct device_peaks {
  double bandwidth = 0;   ///< bytes/s, device memory, read + write (a 1 GiB copy kernel)
  double fp32_flops = 0;  ///< flop/s, FP32 FMA chains (no tensor cores)
  double fp64_flops = 0;  ///< flop/s, FP64 FMA chains
};
device_peaks measure_peaks();

/// Median device seconds of one launch of `k`'s CUDA implementation on device-resident copies
/// of `in` (staging not included), over `reps` runs after a warm-up.
double time_launch(const kernel& k, const product_views& in, const std::vector<product_spec>& out_specs, int reps);

}  // namespace offload::kernels::cuda
