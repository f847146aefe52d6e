// clustering on the device: label propagation with pointer jumping, then per-label energy sums.
#include <offload/cuda.hpp>

#include "kernels/builtin.hpp"

namespace offload::kernels {
namespace {

constexpr unsigned block = 256;
constexpr std::size_t alignment = 256;

unsigned blocks_for(std::uint64_t n) {
  return unsigned((n + block - 1) / block);
}
std::size_t aligned(std::size_t n) {
  return (n + alignment - 1) / alignment * alignment;
}

__global__ void init_labels(const float* e, int n, float threshold, std::int32_t* label) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) label[i] = e[i] > threshold ? i : -1;
}

// Each active cell takes the smallest label among its active 4-neighbours and its label's label;
// labels only decrease, so the races between threads are benign and a fixpoint is reached, at
// which every cell carries the smallest index of its component (as on the CPU).
__global__ void propagate(int rows, int cols, std::int32_t* label, int* changed) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= rows * cols || label[i] < 0) return;
  const int r = i / cols, c = i % cols;
  std::int32_t best = label[i];
  auto look = [&](int j) {
    const std::int32_t l = label[j];
    if (l >= 0 && l < best) best = l;
  };
  if (c > 0) look(i - 1);
  if (c + 1 < cols) look(i + 1);
  if (r > 0) look(i - cols);
  if (r + 1 < rows) look(i + cols);
  const std::int32_t hop = label[best];
  if (hop >= 0 && hop < best) best = hop;
  if (best < label[i]) {
    label[i] = best;
    *changed = 1;
  }
}

__global__ void accumulate(const float* e, const std::int32_t* label, int n, double* total) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n && label[i] >= 0) atomicAdd(&total[label[i]], double(e[i]));
}

__global__ void scatter_sums(const std::int32_t* label, const double* total, int n, float* sum) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) sum[i] = label[i] >= 0 ? float(total[label[i]]) : 0.0f;
}

class clustering_on_device final : public cuda_implementation {
 public:
  /// Per-label sums (f64 per cell), then the "changed" flag.
  std::size_t scratch_bytes(const product_views& host_in) const override {
    return aligned(host_in.at("energy").count * sizeof(double)) + alignment;
  }
  void launch(const cuda_launch& call) const override {
    const auto shape = call.host_in.get<std::int32_t>("shape");
    const float threshold = call.host_in.get<float>("threshold")[0];
    const int rows = shape[0], cols = shape[1], n = rows * cols;
    if (n == 0) return;
    const auto s = stream_of(call);
    const auto* e = static_cast<const float*>(call.input("energy").data);
    auto* label = static_cast<std::int32_t*>(call.out[0].data);
    auto* sum = static_cast<float*>(call.out[1].data);
    auto* total = reinterpret_cast<double*>(call.scratch);
    auto* changed = reinterpret_cast<int*>(call.scratch + aligned(std::size_t(n) * sizeof(double)));
    init_labels<<<blocks_for(n), block, 0, s>>>(e, n, threshold, label);
    OFFLOAD_CUDA_CHECK(cudaGetLastError());
    for (;;) {
      int flag = 0;
      OFFLOAD_CUDA_CHECK(cudaMemsetAsync(changed, 0, sizeof(int), s));
      propagate<<<blocks_for(n), block, 0, s>>>(rows, cols, label, changed);
      OFFLOAD_CUDA_CHECK(cudaGetLastError());
      OFFLOAD_CUDA_CHECK(cudaMemcpyAsync(&flag, changed, sizeof(int), cudaMemcpyDeviceToHost, s));
      OFFLOAD_CUDA_CHECK(cudaStreamSynchronize(s));
      if (flag == 0) break;
    }
    OFFLOAD_CUDA_CHECK(cudaMemsetAsync(total, 0, std::size_t(n) * sizeof(double), s));
    accumulate<<<blocks_for(n), block, 0, s>>>(e, label, n, total);
    scatter_sums<<<blocks_for(n), block, 0, s>>>(label, total, n, sum);
    OFFLOAD_CUDA_CHECK(cudaGetLastError());
  }
};

}  // namespace

const cuda_implementation* clustering_cuda() noexcept {
  static const clustering_on_device impl;
  return &impl;
}

}  // namespace offload::kernels
