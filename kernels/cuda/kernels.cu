// The CUDA launchers of the four kernels. Per-element math comes from kernel_math.hpp, shared
// with the CPU implementations.
#include "device.cuh"
#include "kernels/builtin.hpp"

#include <thrust/execution_policy.h>
#include <thrust/transform.h>

#include <map>
#include <mutex>

namespace offload::kernels::cuda {

namespace {

constexpr unsigned block = 256;
unsigned blocks_for(std::uint64_t n) {
  return unsigned((n + block - 1) / block);
}
std::size_t no_scratch(const product_views&) {
  return 0;
}

// ---- echo: the staging copies are the work; on the device it is one copy per product ----
void echo_launch(stream_context& ctx, const product_views& host_in, std::span<const device_product> in,
                 std::span<const device_product> out, std::byte*) {
  for (std::size_t i = 0; i < in.size(); ++i)
    if (host_in[i].size_bytes() > 0)
      OFFLOAD_CUDA_CHECK(
          cudaMemcpyAsync(out[i].data, in[i].data, host_in[i].size_bytes(), cudaMemcpyDeviceToDevice, ctx.stream()));
}

// ---- synthetic: thrust::transform of the shared per-element loop ----
struct synthetic_step {
  std::int64_t iterations;
  __host__ __device__ double operator()(double x) const { return synthetic_element(x, iterations); }
};

void synthetic_launch(stream_context& ctx, const product_views& host_in, std::span<const device_product> in,
                      std::span<const device_product> out, std::byte*) {
  const auto iterations = host_in.get<std::int64_t>("iterations")[0];
  const auto* x = static_cast<const double*>(in[0].data);
  auto* y = static_cast<double*>(out[0].data);
  thrust::transform(thrust::cuda::par.on(ctx.stream()), x, x + in[0].count, y, synthetic_step{iterations});
  OFFLOAD_CUDA_CHECK(cudaGetLastError());
}

// ---- mlp: one thread per jet; weights copied to each device once ----
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

void mlp_launch(stream_context& ctx, const product_views&, std::span<const device_product> in,
                std::span<const device_product> out, std::byte*) {
  const std::uint64_t jets = in[0].count / mlp_features;
  if (jets == 0) return;
  mlp_forward_kernel<<<blocks_for(jets), block, 0, ctx.stream()>>>(
      device_weights(ctx.device_id()), static_cast<const float*>(in[0].data), static_cast<float*>(out[0].data), jets);
  OFFLOAD_CUDA_CHECK(cudaGetLastError());
}

// ---- clustering: label propagation with pointer jumping, then per-label energy sums ----
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

std::size_t clustering_scratch(const product_views& host_in) {
  return align_device(host_in.at("energy").count * sizeof(double)) + device_alignment;
}

void clustering_launch(stream_context& ctx, const product_views& host_in, std::span<const device_product> in,
                       std::span<const device_product> out, std::byte* scratch) {
  const auto shape = host_in.get<std::int32_t>("shape");
  const float threshold = host_in.get<float>("threshold")[0];
  const int rows = shape[0], cols = shape[1], n = rows * cols;
  if (n == 0) return;
  const auto s = ctx.stream();
  const auto* e = static_cast<const float*>(in[0].data);
  auto* label = static_cast<std::int32_t*>(out[0].data);
  auto* sum = static_cast<float*>(out[1].data);
  auto* total = reinterpret_cast<double*>(scratch);
  auto* changed = reinterpret_cast<int*>(scratch + align_device(std::size_t(n) * sizeof(double)));
  init_labels<<<blocks_for(n), block, 0, s>>>(e, n, threshold, label);
  OFFLOAD_CUDA_CHECK(cudaGetLastError());
  for (;;) {
    OFFLOAD_CUDA_CHECK(cudaMemsetAsync(changed, 0, sizeof(int), s));
    propagate<<<blocks_for(n), block, 0, s>>>(rows, cols, label, changed);
    OFFLOAD_CUDA_CHECK(cudaGetLastError());
    OFFLOAD_CUDA_CHECK(cudaMemcpyAsync(ctx.flag(), changed, sizeof(int), cudaMemcpyDeviceToHost, s));
    OFFLOAD_CUDA_CHECK(cudaStreamSynchronize(s));
    if (*ctx.flag() == 0) break;
  }
  OFFLOAD_CUDA_CHECK(cudaMemsetAsync(total, 0, std::size_t(n) * sizeof(double), s));
  accumulate<<<blocks_for(n), block, 0, s>>>(e, label, n, total);
  scatter_sums<<<blocks_for(n), block, 0, s>>>(label, total, n, sum);
  OFFLOAD_CUDA_CHECK(cudaGetLastError());
}

}  // namespace

const device_kernel echo_device{"echo", no_scratch, echo_launch};
const device_kernel synthetic_device{"synthetic", no_scratch, synthetic_launch};
const device_kernel mlp_device{"mlp", no_scratch, mlp_launch};
const device_kernel clustering_device{"clustering", clustering_scratch, clustering_launch};

}  // namespace offload::kernels::cuda
