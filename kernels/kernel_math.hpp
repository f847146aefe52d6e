#pragma once
// Per-element math shared by the CPU and CUDA implementations of the kernels: one definition,
// compiled by g++ for the host and by nvcc for the device.

#include <math.h>
#include <cstdint>

#if defined(__CUDACC__)
#define OFFLOAD_HD __host__ __device__
#else
#define OFFLOAD_HD
#endif

namespace offload::kernels {

/// splitmix64: the deterministic generator behind every generated input and weight.
struct splitmix64 {
  std::uint64_t state;
  OFFLOAD_HD std::uint64_t next() {
    std::uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  /// Uniform in [0, 1).
  OFFLOAD_HD double uniform() { return double(next() >> 11) * 0x1.0p-53; }
};

/// synthetic: `iterations` steps of acc = acc/2 + x from acc = 0; tends to 2x, errors shrink.
OFFLOAD_HD inline double synthetic_element(double x, std::int64_t iterations) {
  double acc = 0.0;
  for (std::int64_t k = 0; k < iterations; ++k) acc = 0.5 * acc + x;
  return acc;
}

/// mlp geometry: 16 features → 64 → 64 → 4 classes, ReLU between layers, softmax at the end.
inline constexpr int mlp_features = 16;
inline constexpr int mlp_hidden = 64;
inline constexpr int mlp_classes = 4;
inline constexpr int mlp_layers = 3;

/// Weights of one dense layer: w is [out][in] row-major, b is [out].
struct dense_layer {
  const float* w;
  const float* b;
  int in;
  int out;
};

/// y = act(W x + b) for one vector; relu when `relu`.
OFFLOAD_HD inline void dense_forward(const dense_layer& l, const float* x, float* y, bool relu) {
  for (int o = 0; o < l.out; ++o) {
    float acc = l.b[o];
    const float* row = l.w + o * l.in;
    for (int i = 0; i < l.in; ++i) acc += row[i] * x[i];
    y[o] = relu && acc < 0.0f ? 0.0f : acc;
  }
}

/// Numerically stable softmax in place.
OFFLOAD_HD inline void softmax(float* v, int n) {
  float m = v[0];
  for (int i = 1; i < n; ++i) m = v[i] > m ? v[i] : m;
  float sum = 0.0f;
  for (int i = 0; i < n; ++i) {
    v[i] = expf(v[i] - m);
    sum += v[i];
  }
  for (int i = 0; i < n; ++i) v[i] /= sum;
}

/// The full network for one jet: 16 features in, 4 class probabilities out.
OFFLOAD_HD inline void mlp_forward(const dense_layer* layers, const float* x, float* y) {
  float h1[mlp_hidden];
  float h2[mlp_hidden];
  dense_forward(layers[0], x, h1, true);
  dense_forward(layers[1], h1, h2, true);
  dense_forward(layers[2], h2, y, false);
  softmax(y, mlp_classes);
}

}  // namespace offload::kernels
