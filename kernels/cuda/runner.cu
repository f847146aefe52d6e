// The host side of kernels' CUDA implementations: per-thread stream contexts, and the runner
// that stages a request through pinned memory (one gather on the host, one copy each way)
// around a launch.
#include "cuda_kernels.hpp"
#include "device.cuh"

#include <bit>
#include <cstring>
#include <map>
#include <memory>
#include <stdexcept>
#include <vector>

namespace offload::kernels::cuda {

namespace {
std::size_t grow_to(std::size_t bytes) {
  return std::bit_ceil(std::max<std::size_t>(bytes, std::size_t{1} << 20));
}
void ignore(cudaError_t) noexcept {}  // teardown: nothing useful to do with an error
}  // namespace

stream_context::stream_context() {
  OFFLOAD_CUDA_CHECK(cudaGetDevice(&m_device));
  OFFLOAD_CUDA_CHECK(cudaStreamCreateWithFlags(&m_stream, cudaStreamNonBlocking));
  OFFLOAD_CUDA_CHECK(cudaMallocHost(&m_flag, sizeof(int)));
}

stream_context::~stream_context() {
  if (m_stream != nullptr) ignore(cudaStreamSynchronize(m_stream));
  if (m_pinned != nullptr) ignore(cudaFreeHost(m_pinned));
  if (m_device_mem != nullptr) ignore(cudaFree(m_device_mem));
  if (m_flag != nullptr) ignore(cudaFreeHost(m_flag));
  if (m_stream != nullptr) ignore(cudaStreamDestroy(m_stream));
}

namespace {
/// Grows `mem` (of `size` bytes) to hold `bytes`, dropping its contents.
template <class Alloc, class Free>
std::byte* grow(std::byte*& mem, std::size_t& size, std::size_t bytes, Alloc alloc, Free release) {
  if (bytes > size) {
    if (mem != nullptr) OFFLOAD_CUDA_CHECK(release(mem));
    mem = nullptr;
    size = 0;
    const std::size_t want = grow_to(bytes);
    OFFLOAD_CUDA_CHECK(alloc(reinterpret_cast<void**>(&mem), want));
    size = want;
  }
  return mem;
}
}  // namespace

std::byte* stream_context::pinned(std::size_t bytes) {
  if (bytes > m_pinned_size) OFFLOAD_CUDA_CHECK(cudaStreamSynchronize(m_stream));
  return grow(
      m_pinned, m_pinned_size, bytes, [](void** p, std::size_t n) { return cudaMallocHost(p, n); },
      [](void* p) { return cudaFreeHost(p); });
}

std::byte* stream_context::device(std::size_t bytes) {
  if (bytes > m_device_size) OFFLOAD_CUDA_CHECK(cudaStreamSynchronize(m_stream));
  return grow(
      m_device_mem, m_device_size, bytes, [](void** p, std::size_t n) { return cudaMalloc(p, n); },
      [](void* p) { return cudaFree(p); });
}

stream_context& stream_context::current() {
  thread_local std::map<int, std::unique_ptr<stream_context>> contexts;
  int device = 0;
  OFFLOAD_CUDA_CHECK(cudaGetDevice(&device));
  auto& c = contexts[device];
  if (!c) c = std::make_unique<stream_context>();
  return *c;
}

namespace {
const cuda_implementation& implementation_of(const kernel& k) {
  const cuda_implementation* impl = implementation(k);
  if (impl == nullptr) throw std::invalid_argument("kernel '" + std::string(k.name()) + "' has no CUDA implementation");
  return *impl;
}
}  // namespace

void run(const kernel& k, const product_views& in, message_writer& out) {
  const cuda_implementation& impl = implementation_of(k);
  stream_context& ctx = stream_context::current();

  // Layout: inputs, then outputs, then scratch, each piece 256-byte aligned.
  std::vector<std::size_t> in_at, out_at;
  std::size_t pos = 0;
  for (const auto& p : in) {
    in_at.push_back(pos);
    pos += align_device(static_cast<std::size_t>(p.size_bytes()));
  }
  const std::size_t in_total = pos;
  for (std::size_t i = 0; i < out.product_count(); ++i) {
    out_at.push_back(pos);
    pos += align_device(out.payload(i).size());
  }
  const std::size_t out_total = pos - in_total;
  const std::size_t scratch = align_device(impl.scratch_bytes(in));

  // Inputs and outputs in page-locked memory (a receiver's pooled, pinned buffers) are copied
  // straight from and to where they lie; otherwise through this thread's pinned staging buffer
  // (one gather on the host, one copy each way).
  bool direct_in = true, direct_out = true;
  for (const auto& p : in) direct_in = direct_in && (p.size_bytes() == 0 || is_pinned(p.data));
  for (std::size_t i = 0; i < out.product_count(); ++i)
    direct_out = direct_out && (out.payload(i).empty() || is_pinned(out.payload(i).data()));

  std::byte* host = ctx.pinned(in_total + out_total + 1);
  std::byte* dev = ctx.device(in_total + out_total + scratch + 1);
  const auto s = ctx.stream();
  if (direct_in) {
    for (std::size_t i = 0; i < in.size(); ++i)
      if (in[i].size_bytes() > 0)
        OFFLOAD_CUDA_CHECK(cudaMemcpyAsync(dev + in_at[i], in[i].data, static_cast<std::size_t>(in[i].size_bytes()),
                                           cudaMemcpyHostToDevice, s));
  } else {
    for (std::size_t i = 0; i < in.size(); ++i)
      if (in[i].size_bytes() > 0)
        std::memcpy(host + in_at[i], in[i].data, static_cast<std::size_t>(in[i].size_bytes()));
    if (in_total > 0) OFFLOAD_CUDA_CHECK(cudaMemcpyAsync(dev, host, in_total, cudaMemcpyHostToDevice, s));
  }

  std::vector<device_product> din, dout;
  for (std::size_t i = 0; i < in.size(); ++i) din.push_back({dev + in_at[i], in[i].count});
  for (std::size_t i = 0; i < out.product_count(); ++i) dout.push_back({dev + out_at[i], out.spec(i).count});
  impl.launch({in, din, dout, dev + in_total + out_total, s, ctx.device_id()});

  if (direct_out) {
    for (std::size_t i = 0; i < out.product_count(); ++i) {
      auto dst = out.payload(i);
      if (!dst.empty())
        OFFLOAD_CUDA_CHECK(cudaMemcpyAsync(dst.data(), dev + out_at[i], dst.size(), cudaMemcpyDeviceToHost, s));
    }
    OFFLOAD_CUDA_CHECK(cudaStreamSynchronize(s));
    return;
  }
  if (out_total > 0)
    OFFLOAD_CUDA_CHECK(cudaMemcpyAsync(host + in_total, dev + in_total, out_total, cudaMemcpyDeviceToHost, s));
  OFFLOAD_CUDA_CHECK(cudaStreamSynchronize(s));
  for (std::size_t i = 0; i < out.product_count(); ++i) {
    auto dst = out.payload(i);
    if (!dst.empty()) std::memcpy(dst.data(), host + out_at[i], dst.size());
  }
}

bool is_pinned(const void* p) noexcept {
  cudaPointerAttributes a{};
  if (cudaPointerGetAttributes(&a, p) != cudaSuccess) {
    (void)cudaGetLastError();  // clear it: an unknown pointer is not an error of the next call
    return false;
  }
  return a.type == cudaMemoryTypeHost;
}

namespace {
/// Page-locks a host pool's blocks (cudaHostRegister), for every device (portable).
class cuda_pinner final : public host_pool::pinner {
 public:
  bool pin(std::byte* block, std::size_t bytes) noexcept override {
    if (cudaHostRegister(block, bytes, cudaHostRegisterPortable) == cudaSuccess) return true;
    (void)cudaGetLastError();
    return false;  // e.g. over the locked-memory limit: the block stays pageable and is staged
  }
  void unpin(std::byte* block) noexcept override {
    if (cudaHostUnregister(block) != cudaSuccess) (void)cudaGetLastError();  // e.g. at exit, after the context
  }
};
}  // namespace

std::shared_ptr<host_pool::pinner> host_pinner() {
  return std::make_shared<cuda_pinner>();
}

copy_rates measure_copy_rates(std::size_t bytes, int reps) {
  copy_rates r;
  std::byte* dev = nullptr;
  OFFLOAD_CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&dev), bytes));
  auto pool = host_pool::make();
  pool->set_pinner(host_pinner());
  auto pinned = pool->acquire(bytes);
  std::vector<std::byte> pageable(bytes, std::byte{1});
  std::memset(pinned.data(), 1, bytes);
  auto rate = [&](void* to, const void* from, cudaMemcpyKind kind) {
    cudaEvent_t start = nullptr, stop = nullptr;
    OFFLOAD_CUDA_CHECK(cudaEventCreate(&start));
    OFFLOAD_CUDA_CHECK(cudaEventCreate(&stop));
    OFFLOAD_CUDA_CHECK(cudaMemcpy(to, from, bytes, kind));  // warm-up
    OFFLOAD_CUDA_CHECK(cudaEventRecord(start));
    for (int i = 0; i < reps; ++i) OFFLOAD_CUDA_CHECK(cudaMemcpy(to, from, bytes, kind));
    OFFLOAD_CUDA_CHECK(cudaEventRecord(stop));
    OFFLOAD_CUDA_CHECK(cudaEventSynchronize(stop));
    float ms = 0;
    OFFLOAD_CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop));
    ignore(cudaEventDestroy(start));
    ignore(cudaEventDestroy(stop));
    return double(bytes) * reps / (double(ms) * 1e-3);
  };
  r.pinned_pool = is_pinned(pinned.data());
  r.h2d_pooled = rate(dev, pinned.data(), cudaMemcpyHostToDevice);
  r.d2h_pooled = rate(pinned.data(), dev, cudaMemcpyDeviceToHost);
  r.h2d_pageable = rate(dev, pageable.data(), cudaMemcpyHostToDevice);
  r.d2h_pageable = rate(pageable.data(), dev, cudaMemcpyDeviceToHost);
  ignore(cudaFree(dev));
  return r;
}

}  // namespace offload::kernels::cuda
