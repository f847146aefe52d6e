// synthetic on the device: thrust::transform of the per-element loop shared with the CPU.
#include <offload/cuda.hpp>

#include "kernels/builtin.hpp"

#include <thrust/execution_policy.h>
#include <thrust/transform.h>

namespace offload::kernels {
namespace {

struct synthetic_step {
  std::int64_t iterations;
  __host__ __device__ double operator()(double x) const { return synthetic_element(x, iterations); }
};

class synthetic_on_device final : public cuda_implementation {
 public:
  void launch(const cuda_launch& call) const override {
    const auto iterations = call.host_in.get<std::int64_t>("iterations")[0];
    const auto* x = static_cast<const double*>(call.input("x").data);
    auto* y = static_cast<double*>(call.out[0].data);
    thrust::transform(thrust::cuda::par.on(stream_of(call)), x, x + call.input("x").count, y,
                      synthetic_step{iterations});
    OFFLOAD_CUDA_CHECK(cudaGetLastError());
  }
};

}  // namespace

const cuda_implementation* synthetic_cuda() noexcept {
  static const synthetic_on_device impl;
  return &impl;
}

}  // namespace offload::kernels
