// mlp on the device: one thread per jet; the weights are copied to each device once.
#include <offload/cuda.hpp>

#include "kernels/builtin.hpp"

#include <map>
#include <mutex>

namespace offload::kernels {
namespace {

constexpr unsigned block = 256;

struct layers_arg {
  dense_layer l[mlp_layers];
};

__global__ void mlp_forward_kernel(layers_arg layers, const float* features, float* scores, std::uint64_t jets) {
  const std::uint64_t j = std::uint64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (j < jets) mlp_forward(layers.l, features + j * mlp_features, scores + j * mlp_classes);
}

layers_arg device_weights(int device) {
  static std::mutex mutex;
  static std::map<int, layers_arg> cache;  // device memory lives as long as the process
  std::lock_guard lock(mutex);
  if (auto it = cache.find(device); it != cache.end()) return it->second;
  const auto& host = mlp_weights::standard();
  layers_arg args{};
  for (int l = 0; l < mlp_layers; ++l) {
    float* w = nullptr;
    float* b = nullptr;
    OFFLOAD_CUDA_CHECK(cudaMalloc(&w, host.w[l].size() * sizeof(float)));
    OFFLOAD_CUDA_CHECK(cudaMalloc(&b, host.b[l].size() * sizeof(float)));
    OFFLOAD_CUDA_CHECK(cudaMemcpy(w, host.w[l].data(), host.w[l].size() * sizeof(float), cudaMemcpyHostToDevice));
    OFFLOAD_CUDA_CHECK(cudaMemcpy(b, host.b[l].data(), host.b[l].size() * sizeof(float), cudaMemcpyHostToDevice));
    args.l[l] = {w, b, host.width[l], host.width[l + 1]};
  }
  cache.emplace(device, args);
  return args;
}

class mlp_on_device final : public cuda_implementation {
 public:
  void launch(const cuda_launch& call) const override {
    const std::uint64_t jets = call.input("features").count / mlp_features;
    if (jets == 0) return;
    mlp_forward_kernel<<<unsigned((jets + block - 1) / block), block, 0, stream_of(call)>>>(
        device_weights(call.device), static_cast<const float*>(call.input("features").data),
        static_cast<float*>(call.out[0].data), jets);
    OFFLOAD_CUDA_CHECK(cudaGetLastError());
  }
};

}  // namespace

const cuda_implementation* mlp_cuda() noexcept {
  static const mlp_on_device impl;
  return &impl;
}

}  // namespace offload::kernels
