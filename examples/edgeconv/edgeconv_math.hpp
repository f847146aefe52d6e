#pragma once
// The EdgeConv arithmetic, shared by the CPU implementation (edgeconv.cpp) and the CUDA one
// (edgeconv.cu): one particle's features, one jet's scores. Both build it without contracting
// multiply-adds (CMakeLists.txt), so that they compute the same float operations in the same order.
#include "edgeconv.hpp"

#include <cmath>

#ifdef __CUDACC__
#define EDGECONV_HD __host__ __device__
#else
#define EDGECONV_HD
#endif

namespace edgeconv {

/// The weights, wherever they live (host or device memory).
struct net_view {
  const float *w1, *b1, *w2, *b2, *w3, *b3, *w4, *b4;
};

/// y[o] = b[o] + Σ_i w[o·in + i]·x[i], then ReLU when `relu`.
EDGECONV_HD inline void dense(const float* w, const float* b, const float* x, int in, int out, float* y, bool relu) {
  for (int o = 0; o < out; ++o) {
    float acc = b[o];
    for (int i = 0; i < in; ++i) acc += w[o * in + i] * x[i];
    y[o] = relu && acc < 0.0f ? 0.0f : acc;
  }
}

/// The (up to) `neighbours` nearest other particles of particle i among the n of jet x, nearest
/// first, ties to the lower index, into nb; returns how many.
EDGECONV_HD inline int nearest(const float* x, int n, int i, int* nb) {
  double best[neighbours];
  int count = 0;
  for (int j = 0; j < n; ++j) {
    if (j == i) continue;
    const double de = double(x[j * features]) - double(x[i * features]);
    const double dp = double(x[j * features + 1]) - double(x[i * features + 1]);
    const double d = de * de + dp * dp;
    int p = count;
    while (p > 0 && best[p - 1] > d) --p;  // an equal distance stays behind (lower index first)
    if (p >= neighbours) continue;
    for (int q = count < neighbours ? count : neighbours - 1; q > p; --q) {
      best[q] = best[q - 1];
      nb[q] = nb[q - 1];
    }
    best[p] = d;
    nb[p] = j;
    if (count < neighbours) ++count;
  }
  return count;
}

/// Particle i's 32 features: the mean over its neighbours j of the edge MLP on (x_i, x_j − x_i).
EDGECONV_HD inline void particle_features(const net_view& net, const float* x, int n, int i, float* h) {
  int nb[neighbours];
  const int k = nearest(x, n, i, nb);
  float acc[hidden];
  for (int c = 0; c < hidden; ++c) acc[c] = 0.0f;
  const float* xi = x + i * features;
  for (int q = 0; q < k; ++q) {
    const float* xj = x + nb[q] * features;
    float e[edge_in], h1[hidden], h2[hidden];
    for (int f = 0; f < features; ++f) {
      e[f] = xi[f];
      e[features + f] = xj[f] - xi[f];
    }
    dense(net.w1, net.b1, e, edge_in, hidden, h1, true);
    dense(net.w2, net.b2, h1, hidden, hidden, h2, true);
    for (int c = 0; c < hidden; ++c) acc[c] += h2[c];
  }
  for (int c = 0; c < hidden; ++c) h[c] = k > 0 ? acc[c] / float(k) : 0.0f;
}

/// A jet's two scores from its n particles' features h[n][32]: mean, head, softmax.
EDGECONV_HD inline void jet_scores(const net_view& net, const float* h, int n, float* scores) {
  float pooled[hidden], z3[head_hidden], z4[classes];
  for (int c = 0; c < hidden; ++c) {
    float s = 0.0f;
    for (int i = 0; i < n; ++i) s += h[i * hidden + c];
    pooled[c] = n > 0 ? s / float(n) : 0.0f;
  }
  dense(net.w3, net.b3, pooled, hidden, head_hidden, z3, true);
  dense(net.w4, net.b4, z3, head_hidden, classes, z4, false);
  const float m = z4[0] > z4[1] ? z4[0] : z4[1];
  const float e0 = expf(z4[0] - m), e1 = expf(z4[1] - m);
  scores[0] = e0 / (e0 + e1);
  scores[1] = e1 / (e0 + e1);
}

}  // namespace edgeconv
