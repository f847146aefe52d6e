// clustering on the GPU: label propagation. Every active cell starts with its own index and
// takes the smallest label among its active 4-neighbours until nothing changes; the result
// is the smallest index of each component, as on the CPU. Energies are summed per label with
// double atomics, then written back per cell.
#include "cuda_check.cuh"
#include "cuda_kernels.hpp"

#include <thrust/device_vector.h>
#include <thrust/fill.h>

namespace offload::kernels::cuda {

namespace {

__global__ void init_labels(const float* e, int n, float threshold, std::int32_t* label) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) label[i] = e[i] > threshold ? i : -1;
}

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
  // Pointer jumping: follow the label to its own label, which converges much faster.
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

__global__ void scatter(const std::int32_t* label, const double* total, int n, float* sum) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) sum[i] = label[i] >= 0 ? float(total[label[i]]) : 0.0f;
}

}  // namespace

void clustering(const product_views& in, message_writer& out) {
  auto e = in.get<float>("energy");
  auto shape = in.get<std::int32_t>("shape");
  const float threshold = in.get<float>("threshold")[0];
  const int rows = shape[0], cols = shape[1], n = rows * cols;
  thrust::device_vector<float> de(e.begin(), e.end());
  thrust::device_vector<std::int32_t> label(n);
  thrust::device_vector<double> total(n, 0.0);
  thrust::device_vector<float> sum(n);
  thrust::device_vector<int> changed(1);
  const int threads = 256, blocks = (n + threads - 1) / threads;
  auto* lp = thrust::raw_pointer_cast(label.data());
  init_labels<<<blocks, threads>>>(thrust::raw_pointer_cast(de.data()), n, threshold, lp);
  OFFLOAD_CUDA_CHECK_LAUNCH();
  for (;;) {
    changed[0] = 0;
    propagate<<<blocks, threads>>>(rows, cols, lp, thrust::raw_pointer_cast(changed.data()));
    OFFLOAD_CUDA_CHECK_LAUNCH();
    if (changed[0] == 0) break;
  }
  accumulate<<<blocks, threads>>>(thrust::raw_pointer_cast(de.data()), lp, n, thrust::raw_pointer_cast(total.data()));
  scatter<<<blocks, threads>>>(lp, thrust::raw_pointer_cast(total.data()), n, thrust::raw_pointer_cast(sum.data()));
  OFFLOAD_CUDA_CHECK_LAUNCH();
  thrust::copy(label.begin(), label.end(), out.payload_as<std::int32_t>(0).data());
  thrust::copy(sum.begin(), sum.end(), out.payload_as<float>(1).data());
}

}  // namespace offload::kernels::cuda
