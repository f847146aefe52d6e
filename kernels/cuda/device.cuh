#pragma once
// The device side of the CUDA kernels: each kernel is a launcher that works on device memory
// on a given stream. The host side (runner.cu) stages inputs and outputs through per-thread
// pinned buffers and a per-thread device arena, so kernels neither allocate nor synchronise.

#include <offload/product.hpp>

#include "cuda_check.cuh"

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

namespace offload::kernels::cuda {

/// A product in device memory.
struct device_product {
  void* data;
  std::uint64_t count;
};

/// Per-thread CUDA resources: a stream, pinned host staging, a device arena, a pinned word.
class stream_context {
 public:
  stream_context();
  ~stream_context();
  stream_context(const stream_context&) = delete;
  stream_context& operator=(const stream_context&) = delete;

  cudaStream_t stream() const noexcept { return m_stream; }
  /// Pinned host memory of at least `bytes` (contents kept only until the next call).
  std::byte* pinned(std::size_t bytes);
  /// Device memory of at least `bytes` (likewise).
  std::byte* device(std::size_t bytes);
  /// A pinned int for small device-to-host flags.
  int* flag() noexcept { return m_flag; }
  int device_id() const noexcept { return m_device; }

  /// The calling thread's context for the current device.
  static stream_context& current();

 private:
  int m_device = -1;
  cudaStream_t m_stream = nullptr;
  std::byte* m_pinned = nullptr;
  std::size_t m_pinned_size = 0;
  std::byte* m_device_mem = nullptr;
  std::size_t m_device_size = 0;
  int* m_flag = nullptr;
};

/// A kernel on the device: `in`/`out` follow the product order of the kernel's inputs and
/// outputs; `host_in` is the same inputs in host memory (for sizes and scalar parameters);
/// `scratch` points at `scratch_bytes(host_in)` bytes of device memory.
struct device_kernel {
  std::string_view name;
  std::size_t (*scratch_bytes)(const product_views& host_in);
  void (*launch)(stream_context& ctx, const product_views& host_in, std::span<const device_product> in,
                 std::span<const device_product> out, std::byte* scratch);
};

/// The device kernel called `name`, or nullptr.
const device_kernel* find_device_kernel(std::string_view name) noexcept;

inline constexpr std::size_t device_alignment = 256;
inline std::size_t align_device(std::size_t n) {
  return (n + device_alignment - 1) / device_alignment * device_alignment;
}

// The launchers (kernels.cu).
extern const device_kernel echo_device;
extern const device_kernel synthetic_device;
extern const device_kernel mlp_device;
extern const device_kernel clustering_device;

}  // namespace offload::kernels::cuda
