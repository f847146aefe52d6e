// synthetic on the GPU: the same per-element loop (kernel_math.hpp), one thread per element.
#include "../kernel_math.hpp"
#include "cuda_check.cuh"
#include "cuda_kernels.hpp"

#include <thrust/device_vector.h>
#include <thrust/transform.h>

namespace offload::kernels::cuda {

namespace {
struct step {
  std::int64_t iterations;
  __host__ __device__ double operator()(double x) const { return synthetic_element(x, iterations); }
};
}  // namespace

void synthetic(const product_views& in, message_writer& out) {
  auto x = in.get<double>("x");
  const auto iterations = in.get<std::int64_t>("iterations")[0];
  thrust::device_vector<double> dx(x.begin(), x.end());
  thrust::device_vector<double> dy(x.size());
  thrust::transform(dx.begin(), dx.end(), dy.begin(), step{iterations});
  OFFLOAD_CUDA_CHECK_LAUNCH();
  auto y = out.payload_as<double>(0);
  thrust::copy(dy.begin(), dy.end(), y.data());
}

}  // namespace offload::kernels::cuda
