#include "queueing.hpp"

#include "batching_server.hpp"

#include <cmath>
#include <random>
#include <stdexcept>
#include <vector>

namespace offload::sim {

queue_figures inoue_exact(double lambda, double alpha, double tau0) {
  if (!(lambda > 0 && alpha > 0 && tau0 > 0) || lambda * alpha >= 1)
    throw std::invalid_argument("the batching queue needs lambda, alpha, tau0 > 0 and lambda * alpha < 1");
  // Truncate the batch size where the chain's mean plus many standard deviations ends.
  const double mean_guess = lambda * tau0 / (1 - lambda * alpha) + 1;
  const std::size_t n = std::size_t(std::ceil(4 * mean_guess + 20 * std::sqrt(mean_guess) + 50));
  // Row b: the Poisson law of A with mean lambda (alpha b + tau0), k = 0..n.
  std::vector<double> pi(n + 1, 0.0), next(n + 1);
  pi[1] = 1.0;
  std::vector<std::vector<double>> rows(n + 1);
  for (std::size_t b = 1; b <= n; ++b) {
    const double m = lambda * (alpha * double(b) + tau0);
    auto& row = rows[b];
    row.assign(n + 1, 0.0);
    for (std::size_t k = 0; k <= n; ++k)  // in logs: exp(-m) alone underflows for large m
      row[k] = std::exp(-m + double(k) * std::log(m) - std::lgamma(double(k) + 1));
  }
  for (int it = 0; it < 100000; ++it) {
    std::fill(next.begin(), next.end(), 0.0);
    for (std::size_t b = 1; b <= n; ++b) {
      if (pi[b] < 1e-300) continue;
      const auto& row = rows[b];
      next[1] += pi[b] * row[0];  // A = 0: the next batch is the next arrival alone
      for (std::size_t k = 1; k <= n; ++k) next[k] += pi[b] * row[k];
    }
    double total = 0, diff = 0;
    for (double v : next) total += v;
    for (std::size_t k = 0; k <= n; ++k) {
      next[k] /= total;
      diff += std::abs(next[k] - pi[k]);
    }
    pi.swap(next);
    if (diff < 1e-13) break;
  }
  double e1 = 0, e2 = 0;
  for (std::size_t k = 1; k <= n; ++k) {
    e1 += double(k) * pi[k];
    e2 += double(k) * double(k) * pi[k];
  }
  return {e1, alpha + tau0 + (1 + 2 * lambda * alpha) * (e2 - e1) / (2 * lambda * e1)};
}

double inoue_bound(double lambda, double alpha, double tau0) {
  const double la = lambda * alpha;
  const double phi0 = (alpha + tau0) / (2 * (1 - la)) * (1 + 2 * lambda * tau0 + (1 - lambda * tau0) / (1 + la));
  const double phi1 = 1.5 * tau0 / (1 - la) + (alpha / 2) * (la + 2) / (1 - la * la);
  return std::min(phi0, phi1);
}

queue_figures simulate_queue(double lambda, double alpha, double tau0, std::uint64_t requests, std::uint64_t seed) {
  simulation s;
  batching_server server(s, {}, [&](std::size_t, double b) { return alpha * b + tau0; });
  std::mt19937_64 rng(seed);
  std::exponential_distribution<double> gap(lambda);
  double latency_sum = 0;
  std::uint64_t arrived = 0, done = 0;
  const std::uint64_t warmup = requests / 10;  // the first tenth, from an empty queue, is not counted
  std::function<void()> arrive = [&] {
    const double t0 = s.now();
    const bool counted = arrived >= warmup;
    server.submit(0, 1, [&, t0, counted](double) {
      if (!counted) return;
      latency_sum += s.now() - t0;
      ++done;
    });
    if (++arrived < requests) s.after(gap(rng), arrive);
  };
  s.after(gap(rng), arrive);
  s.run(1e300);
  return {server.batches() ? double(server.requests()) / double(server.batches()) : 0.0,
          done ? latency_sum / double(done) : 0.0};
}

}  // namespace offload::sim
