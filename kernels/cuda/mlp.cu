// mlp on the GPU: one thread per jet runs the shared forward pass (kernel_math.hpp) with the
// weights of mlp_weights::standard() copied to the device once.
#include "../builtin.hpp"
#include "cuda_check.cuh"
#include "cuda_kernels.hpp"

#include <thrust/device_vector.h>

#include <mutex>

namespace offload::kernels::cuda {

namespace {

struct device_weights {
  std::array<thrust::device_vector<float>, mlp_layers> w, b;
  std::array<dense_layer, mlp_layers> layers;  // pointing into device memory
};

const device_weights& weights() {
  static std::once_flag once;
  static device_weights* dw = nullptr;
  std::call_once(once, [] {
    const auto& host = mlp_weights::standard();
    auto* d = new device_weights;  // lives as long as the process (device memory too)
    for (int l = 0; l < mlp_layers; ++l) {
      d->w[l] = host.w[l];
      d->b[l] = host.b[l];
      d->layers[l] = {thrust::raw_pointer_cast(d->w[l].data()), thrust::raw_pointer_cast(d->b[l].data()),
                      host.width[l], host.width[l + 1]};
    }
    dw = d;
  });
  return *dw;
}

struct layers_arg {
  dense_layer l[mlp_layers];
};

__global__ void forward(layers_arg layers, const float* features, float* scores, std::size_t jets) {
  const std::size_t j = std::size_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (j < jets) mlp_forward(layers.l, features + j * mlp_features, scores + j * mlp_classes);
}

}  // namespace

void mlp(const product_views& in, message_writer& out) {
  auto f = in.get<float>("features");
  const std::size_t jets = f.size() / mlp_features;
  if (jets == 0) return;
  const auto& dw = weights();
  layers_arg args;
  for (int l = 0; l < mlp_layers; ++l) args.l[l] = dw.layers[l];
  thrust::device_vector<float> df(f.begin(), f.end());
  thrust::device_vector<float> ds(jets * mlp_classes);
  const unsigned threads = 128;
  forward<<<unsigned((jets + threads - 1) / threads), threads>>>(args, thrust::raw_pointer_cast(df.data()),
                                                                thrust::raw_pointer_cast(ds.data()), jets);
  OFFLOAD_CUDA_CHECK_LAUNCH();
  thrust::copy(ds.begin(), ds.end(), out.payload_as<float>(0).data());
}

}  // namespace offload::kernels::cuda
