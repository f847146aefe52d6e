// offload-sim: the scale model (issue 17), built up in steps. This step: its dynamic-batching
// server checked against queueing theory (`offload-sim queue`).
#include "queueing.hpp"

#include <CLI/CLI.hpp>

#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

int main(int argc, char** argv) {
  CLI::App app{
      "offload-sim: a discrete-event model of transmitters, links and GPU servers (in progress: see docs/"
      "emulated-device.md and issue 17)"};
  app.require_subcommand(1);
  auto* queue = app.add_subcommand(
      "queue",
      "one server with dynamic batching (no maximum), Poisson arrivals, batch time alpha*b + tau0: the simulated mean "
      "latency against the exact one (Inoue, Performance Evaluation 147 (2021) 102183) at each load lambda*alpha");
  double alpha_ms = 0.1438, tau0_ms = 1.8874, tolerance = 0.02;
  std::vector<double> loads{0.1, 0.3, 0.5, 0.7, 0.9};
  std::uint64_t requests = 200000, seed = 1;
  queue->add_option("--alpha-ms", alpha_ms, "time per item of a batch (default: the paper's V100 fit)")
      ->check(CLI::PositiveNumber);
  queue->add_option("--tau0-ms", tau0_ms, "fixed time of a batch (default: the paper's V100 fit)")
      ->check(CLI::PositiveNumber);
  queue->add_option("--loads", loads, "loads lambda*alpha, each in (0, 1)")
      ->delimiter(',')
      ->check(CLI::Range(1e-6, 0.999));
  queue->add_option("--requests", requests, "simulated requests per load")->check(CLI::Range(1000, 100000000));
  queue->add_option("--seed", seed, "seed of the arrivals");
  queue
      ->add_option("--tolerance", tolerance,
                   "largest relative difference from the exact mean accepted (exit 1 past it)")
      ->check(CLI::PositiveNumber);
  CLI11_PARSE(app, argc, argv);

  const double alpha = alpha_ms * 1e-3, tau0 = tau0_ms * 1e-3;
  std::printf("offload-sim queue: alpha %.4g ms, tau0 %.4g ms, %llu requests per load, seed %llu\n", alpha_ms, tau0_ms,
              (unsigned long long)requests, (unsigned long long)seed);
  std::printf("%6s %12s %12s %12s %12s %10s %10s\n", "load", "exact_ms", "bound_ms", "simulated_ms", "sim/exact",
              "E[B]", "sim E[B]");
  bool ok = true;
  for (double load : loads) {
    const double lambda = load / alpha;
    const auto exact = offload::sim::inoue_exact(lambda, alpha, tau0);
    const auto sim = offload::sim::simulate_queue(lambda, alpha, tau0, requests, seed);
    const double ratio = sim.mean_latency / exact.mean_latency;
    ok = ok && std::abs(ratio - 1) <= tolerance;
    std::printf("%6.2f %12.4f %12.4f %12.4f %12.4f %10.2f %10.2f\n", load, 1e3 * exact.mean_latency,
                1e3 * offload::sim::inoue_bound(lambda, alpha, tau0), 1e3 * sim.mean_latency, ratio, exact.mean_batch,
                sim.mean_batch);
  }
  std::printf("offload-sim queue: %s (tolerance %.3g)\n", ok ? "within tolerance" : "OUT OF TOLERANCE", tolerance);
  return ok ? 0 : 1;
}
