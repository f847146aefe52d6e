#include <offload/cuda.hpp>

#include "cuda_kernels.hpp"
#include "kernels/builtin.hpp"

namespace offload::kernels {
// The built-in kernels' CUDA implementations (echo.cu, synthetic.cu, mlp.cu, clustering.cu).
const cuda_implementation* echo_cuda() noexcept;
const cuda_implementation* synthetic_cuda() noexcept;
const cuda_implementation* mlp_cuda() noexcept;
const cuda_implementation* clustering_cuda() noexcept;
}  // namespace offload::kernels

namespace offload::kernels::cuda {

const cuda_implementation* implementation(const kernel& k) noexcept {
  if (const cuda_implementation* own = k.cuda()) return own;
  if (&k == &echo_kernel()) return echo_cuda();
  if (&k == &synthetic_kernel()) return synthetic_cuda();
  if (&k == &mlp_kernel()) return mlp_cuda();
  if (&k == &clustering_kernel()) return clustering_cuda();
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

void use_device(int device) {
  OFFLOAD_CUDA_CHECK(cudaSetDevice(device));
}

int device_count() noexcept {
  int n = 0;
  return cudaGetDeviceCount(&n) == cudaSuccess ? n : 0;
}

namespace {
std::string version_text(int v) {
  return std::to_string(v / 1000) + "." + std::to_string(v % 1000 / 10);
}
}  // namespace

std::string versions() noexcept {
  int driver = 0, runtime = 0;
  cudaRuntimeGetVersion(&runtime);
  const bool has_driver = cudaDriverGetVersion(&driver) == cudaSuccess && driver > 0;
  return "runtime " + version_text(runtime) + ", driver " + (has_driver ? version_text(driver) : std::string("none"));
}

std::string device_report(int device) {
  cudaDeviceProp p{};
  OFFLOAD_CUDA_CHECK(cudaGetDeviceProperties(&p, device));
  char bus[32] = {};
  OFFLOAD_CUDA_CHECK(cudaDeviceGetPCIBusId(bus, sizeof bus, device));
  int driver = 0, runtime = 0;
  OFFLOAD_CUDA_CHECK(cudaDriverGetVersion(&driver));
  OFFLOAD_CUDA_CHECK(cudaRuntimeGetVersion(&runtime));
  return "device " + std::to_string(device) + ": " + p.name + ", sm_" + std::to_string(p.major) +
         std::to_string(p.minor) + ", " + std::to_string(p.multiProcessorCount) + " SMs, " +
         std::to_string(p.totalGlobalMem >> 20) + " MiB, PCI " + bus + ", driver " + version_text(driver) +
         ", runtime " + version_text(runtime);
}

}  // namespace offload::kernels::cuda
