// Device measurements for the kernel benchmark: memory bandwidth, FP32 and FP64 peak rates,
// and the device time of a kernel launch on device-resident data.
#include "cuda_kernels.hpp"
#include "device.cuh"

#include <algorithm>
#include <cstring>
#include <vector>

namespace offload::kernels::cuda {

namespace {

struct event_timer {
  cudaEvent_t start{}, stop{};
  event_timer() {
    OFFLOAD_CUDA_CHECK(cudaEventCreate(&start));
    OFFLOAD_CUDA_CHECK(cudaEventCreate(&stop));
  }
  ~event_timer() {
    cudaEventDestroy(start);
    cudaEventDestroy(stop);
  }
  event_timer(const event_timer&) = delete;
  event_timer& operator=(const event_timer&) = delete;
  /// Median seconds of `reps` timed runs of `f` on `s`, after one warm-up.
  template <class F> double median(cudaStream_t s, int reps, F&& f) {
    f();
    OFFLOAD_CUDA_CHECK(cudaStreamSynchronize(s));
    std::vector<double> t;
    for (int r = 0; r < reps; ++r) {
      OFFLOAD_CUDA_CHECK(cudaEventRecord(start, s));
      f();
      OFFLOAD_CUDA_CHECK(cudaEventRecord(stop, s));
      OFFLOAD_CUDA_CHECK(cudaEventSynchronize(stop));
      float ms = 0;
      OFFLOAD_CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop));
      t.push_back(ms * 1e-3);
    }
    std::sort(t.begin(), t.end());
    return t[t.size() / 2];
  }
};

__global__ void copy_kernel(const float4* __restrict__ in, float4* __restrict__ out, std::size_t n) {
  for (std::size_t i = std::size_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += std::size_t(gridDim.x) * blockDim.x)
    out[i] = in[i];
}

constexpr int fma_chains = 8;
constexpr int fma_steps = 4096;

template <class T> __global__ void fma_kernel(T* out, T a, T b) {
  T v[fma_chains];
  for (int c = 0; c < fma_chains; ++c) v[c] = T(threadIdx.x + c);
  for (int s = 0; s < fma_steps; ++s)
#pragma unroll
    for (int c = 0; c < fma_chains; ++c) v[c] = v[c] * a + b;
  T sum = 0;
  for (int c = 0; c < fma_chains; ++c) sum += v[c];
  if (sum == T(-1.2345)) out[0] = sum;  // keeps the work alive
}

template <class T> double peak_flops(stream_context& ctx) {
  int sms = 0;
  OFFLOAD_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, ctx.device_id()));
  const unsigned blocks = unsigned(sms) * 8, threads = 256;
  T* out = reinterpret_cast<T*>(ctx.device(sizeof(T)));
  event_timer t;
  const double s =
      t.median(ctx.stream(), 5, [&] { fma_kernel<T><<<blocks, threads, 0, ctx.stream()>>>(out, T(0.999), T(0.001)); });
  OFFLOAD_CUDA_CHECK(cudaGetLastError());
  return 2.0 * double(blocks) * threads * fma_chains * fma_steps / s;
}

}  // namespace

device_peaks measure_peaks() {
  stream_context& ctx = stream_context::current();
  device_peaks p;
  const std::size_t bytes = std::size_t{1} << 30;
  std::byte* mem = ctx.device(2 * bytes);
  OFFLOAD_CUDA_CHECK(cudaMemsetAsync(mem, 0, 2 * bytes, ctx.stream()));
  event_timer t;
  const std::size_t n = bytes / sizeof(float4);
  const double s = t.median(ctx.stream(), 10, [&] {
    copy_kernel<<<4096, 256, 0, ctx.stream()>>>(reinterpret_cast<const float4*>(mem),
                                                reinterpret_cast<float4*>(mem + bytes), n);
  });
  OFFLOAD_CUDA_CHECK(cudaGetLastError());
  p.bandwidth = 2.0 * double(bytes) / s;  // read + write
  p.fp32_flops = peak_flops<float>(ctx);
  p.fp64_flops = peak_flops<double>(ctx);
  return p;
}

double time_launch(const kernel& k, const product_views& in, const std::vector<product_spec>& out_specs, int reps) {
  const cuda_implementation* found = implementation(k);
  if (found == nullptr)
    throw std::invalid_argument("kernel '" + std::string(k.name()) + "' has no CUDA implementation");
  const cuda_implementation& impl = *found;
  stream_context& ctx = stream_context::current();
  std::size_t pos = 0;
  std::vector<std::size_t> in_at, out_at;
  for (const auto& p : in) {
    in_at.push_back(pos);
    pos += align_device(static_cast<std::size_t>(p.size_bytes()));
  }
  for (const auto& s : out_specs) {
    out_at.push_back(pos);
    pos += align_device(static_cast<std::size_t>(s.size_bytes()));
  }
  const std::size_t data = pos;
  std::byte* dev = ctx.device(data + align_device(impl.scratch_bytes(in)) + 1);
  for (std::size_t i = 0; i < in.size(); ++i)
    OFFLOAD_CUDA_CHECK(
        cudaMemcpy(dev + in_at[i], in[i].data, static_cast<std::size_t>(in[i].size_bytes()), cudaMemcpyHostToDevice));
  std::vector<device_product> din, dout;
  for (std::size_t i = 0; i < in.size(); ++i) din.push_back({dev + in_at[i], in[i].count});
  for (std::size_t i = 0; i < out_specs.size(); ++i) dout.push_back({dev + out_at[i], out_specs[i].count});
  event_timer t;
  return t.median(ctx.stream(), reps, [&] { impl.launch({in, din, dout, dev + data, ctx.stream(), ctx.device_id()}); });
}

}  // namespace offload::kernels::cuda
