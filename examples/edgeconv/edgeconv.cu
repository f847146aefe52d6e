// The EdgeConv kernel's CUDA implementation: one thread per particle (a block per jet) for the
// neighbours and the edge MLP, then one thread per jet for pooling and the head. The weights
// are copied to each device once.
#include <offload/cuda.hpp>

#include "edgeconv.hpp"
#include "edgeconv_math.hpp"

#include <map>
#include <mutex>

namespace edgeconv {
namespace {

__global__ void particles_kernel(net_view net, const float* f, const std::int32_t* counts, std::uint64_t jets,
                                 float* h) {
  const std::uint64_t jet = blockIdx.x;
  const int i = int(threadIdx.x);
  if (jet >= jets || i >= counts[jet]) return;
  particle_features(net, f + jet * max_particles * features, counts[jet], i,
                    h + (jet * max_particles + std::uint64_t(i)) * hidden);
}

__global__ void jets_kernel(net_view net, const float* h, const std::int32_t* counts, std::uint64_t jets,
                            float* scores) {
  const std::uint64_t jet = std::uint64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (jet < jets) jet_scores(net, h + jet * max_particles * hidden, counts[jet], scores + jet * classes);
}

/// The weights in device memory, copied once per device; they live as long as the process.
net_view device_weights(int device) {
  static std::mutex mutex;
  static std::map<int, net_view> cache;
  std::lock_guard lock(mutex);
  if (auto it = cache.find(device); it != cache.end()) return it->second;
  const weights& w = weights::standard();
  float* d = nullptr;
  OFFLOAD_CUDA_CHECK(cudaMalloc(&d, sizeof(weights)));
  OFFLOAD_CUDA_CHECK(cudaMemcpy(d, &w, sizeof(weights), cudaMemcpyHostToDevice));
  auto at = [&](const float* host) { return d + (host - reinterpret_cast<const float*>(&w)); };
  const net_view net{at(w.w1.data()), at(w.b1.data()), at(w.w2.data()), at(w.b2.data()),
                     at(w.w3.data()), at(w.b3.data()), at(w.w4.data()), at(w.b4.data())};
  cache.emplace(device, net);
  return net;
}

class edgeconv_on_device final : public offload::cuda_implementation {
 public:
  /// The particles' features, [jets][50][32] floats.
  std::size_t scratch_bytes(const offload::product_views& host_in) const override {
    return host_in.at("counts").count * max_particles * hidden * sizeof(float);
  }
  void launch(const offload::cuda_launch& call) const override {
    const std::uint64_t jets = call.input("counts").count;
    if (jets == 0) return;
    const net_view net = device_weights(call.device);
    const auto s = offload::stream_of(call);
    const auto* f = static_cast<const float*>(call.input("features").data);
    const auto* counts = static_cast<const std::int32_t*>(call.input("counts").data);
    auto* h = reinterpret_cast<float*>(call.scratch);
    particles_kernel<<<unsigned(jets), 64, 0, s>>>(net, f, counts, jets, h);
    OFFLOAD_CUDA_CHECK(cudaGetLastError());
    jets_kernel<<<unsigned((jets + 127) / 128), 128, 0, s>>>(net, h, counts, jets,
                                                             static_cast<float*>(call.out[0].data));
    OFFLOAD_CUDA_CHECK(cudaGetLastError());
  }
};

}  // namespace

const offload::cuda_implementation* cuda_implementation() noexcept {
  static const edgeconv_on_device impl;
  return &impl;
}

}  // namespace edgeconv
