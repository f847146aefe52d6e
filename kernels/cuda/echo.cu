// echo on the GPU: every product makes the round trip through device memory.
#include "cuda_check.cuh"
#include "cuda_kernels.hpp"

#include <thrust/device_vector.h>

namespace offload::kernels::cuda {

void echo(const product_views& in, message_writer& out) {
  for (std::size_t i = 0; i < in.size(); ++i) {
    const auto n = static_cast<std::size_t>(in[i].size_bytes());
    if (n == 0) continue;
    thrust::device_vector<unsigned char> d(n);
    OFFLOAD_CUDA_CHECK(cudaMemcpy(thrust::raw_pointer_cast(d.data()), in[i].data, n, cudaMemcpyHostToDevice));
    OFFLOAD_CUDA_CHECK(cudaMemcpy(out.payload(i).data(), thrust::raw_pointer_cast(d.data()), n, cudaMemcpyDeviceToHost));
  }
}

}  // namespace offload::kernels::cuda
