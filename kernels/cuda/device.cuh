#pragma once
// Per-thread CUDA resources of the runner (runner.cu), which stages a kernel's inputs and
// outputs through per-thread pinned buffers and a per-thread device arena, so that kernels'
// CUDA implementations neither allocate nor synchronise the device.

#include <offload/cuda.hpp>

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

namespace offload::kernels::cuda {

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

inline constexpr std::size_t device_alignment = 256;
inline std::size_t align_device(std::size_t n) {
  return (n + device_alignment - 1) / device_alignment * device_alignment;
}

}  // namespace offload::kernels::cuda
