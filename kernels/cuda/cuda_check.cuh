#pragma once
// OFFLOAD_CUDA_CHECK(call): throws std::runtime_error naming the call, file, line and CUDA's text.

#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

namespace offload::kernels::cuda {

[[noreturn]] inline void throw_cuda_error(cudaError_t e, const char* call, const char* file, int line) {
  throw std::runtime_error(std::string(call) + " failed at " + file + ":" + std::to_string(line) + ": " +
                           cudaGetErrorName(e) + ": " + cudaGetErrorString(e));
}

}  // namespace offload::kernels::cuda

#define OFFLOAD_CUDA_CHECK(call)                                                               \
  do {                                                                                         \
    if (const cudaError_t offload_cuda_rc_ = (call); offload_cuda_rc_ != cudaSuccess)          \
      ::offload::kernels::cuda::throw_cuda_error(offload_cuda_rc_, #call, __FILE__, __LINE__); \
  } while (false)
