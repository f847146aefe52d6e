#pragma once
/// \file
/// For the .cu file of a kernel's CUDA implementation (offload/kernel.hpp: cuda_implementation):
/// the stream to launch on and OFFLOAD_CUDA_CHECK. The only public header that includes CUDA's.

#include <offload/kernel.hpp>

#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

namespace offload {

/// The stream a launch must use.
inline cudaStream_t stream_of(const cuda_launch& call) noexcept {
  return call.stream;
}

/// Thrown by OFFLOAD_CUDA_CHECK: names the call, the file and line, and CUDA's error.
class cuda_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

[[noreturn]] inline void throw_cuda_error(cudaError_t e, const char* call, const char* file, int line) {
  throw cuda_error(std::string(call) + " failed at " + file + ":" + std::to_string(line) + ": " + cudaGetErrorName(e) +
                   ": " + cudaGetErrorString(e));
}

}  // namespace offload

/// OFFLOAD_CUDA_CHECK(call): throws offload::cuda_error when `call` does not return cudaSuccess.
#define OFFLOAD_CUDA_CHECK(call)                                                      \
  do {                                                                                \
    if (const cudaError_t offload_cuda_rc_ = (call); offload_cuda_rc_ != cudaSuccess) \
      ::offload::throw_cuda_error(offload_cuda_rc_, #call, __FILE__, __LINE__);       \
  } while (false)
