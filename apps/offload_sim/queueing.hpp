#pragma once
// The dynamic-batching queue of Inoue (Performance Evaluation 147 (2021) 102183,
// arXiv:1912.06322): one server, Poisson arrivals of rate lambda, no maximum batch; an idle
// server takes every waiting request as one batch, which takes alpha*b + tau0. The exact mean
// latency from the batch-size Markov chain, its closed-form upper bound, and the same queue
// simulated with offload-sim's batching server: the check that the simulator's server is right.

#include <cstdint>

namespace offload::sim {

struct queue_figures {
  double mean_batch = 0;
  double mean_latency = 0;  ///< seconds
};

/// The exact mean latency: B' = A + 1{A = 0}, A ~ Poisson(lambda (alpha B + tau0)); its
/// stationary law by iteration (truncated where the tail is below 1e-13), then
/// E[W] = alpha + tau0 + (1 + 2 lambda alpha)(E[B^2] - E[B]) / (2 lambda E[B]).
/// Throws std::invalid_argument unless lambda * alpha < 1 and every figure is positive.
queue_figures inoue_exact(double lambda, double alpha, double tau0);
/// Theorem 2's upper bound, min(phi0, phi1).
double inoue_bound(double lambda, double alpha, double tau0);
/// The same queue simulated: `requests` Poisson arrivals (seed `seed`) through a
/// batching_server; the mean of their latencies (the first tenth, from an empty queue, left
/// out) and of the batch sizes.
queue_figures simulate_queue(double lambda, double alpha, double tau0, std::uint64_t requests, std::uint64_t seed);

}  // namespace offload::sim
