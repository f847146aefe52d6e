#include "cuda_check.cuh"
#include "cuda_kernels.hpp"

namespace offload::kernels::cuda {

implementation find(std::string_view name) noexcept {
  if (name == "echo") return &echo;
  if (name == "synthetic") return &synthetic;
  if (name == "mlp") return &mlp;
  if (name == "clustering") return &clustering;
  return nullptr;
}

bool device_available(std::string& why) {
  int n = 0;
  const cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess) {
    why = std::string("no usable CUDA device: ") + cudaGetErrorName(e) + " (" + cudaGetErrorString(e) + ")";
    return false;
  }
  if (n == 0) {
    why = "no CUDA device is visible";
    return false;
  }
  return true;
}

}  // namespace offload::kernels::cuda
