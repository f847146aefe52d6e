// offload-sim: the scale model (issue 17), built up in steps. `offload-sim queue`: its
// dynamic-batching server checked against queueing theory. `offload-sim run`: client jobs,
// links and GPU servers from a workload file and a device profile (no library costs yet).
#include "apps/common/workload.hpp"
#include "queueing.hpp"
#include "system.hpp"

#include <CLI/CLI.hpp>

#include <cmath>
#include <cstdio>
#include <exception>
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
  auto* run =
      app.add_subcommand("run", "jobs against GPU servers: events/s per job with the GPUs and CPU-only, GPU busy");
  offload::sim::system_config c;
  std::string workload = "miniaod", profile = "t4";
  double rtt_ms = 0, link_gbit = 0;
  std::vector<std::string> gpus;
  run->add_option("--workload", workload, "workloads/NAME.json or a file");
  run->add_option("--profile", profile, "profiles/NAME.json or a file");
  run->add_option("--jobs", c.jobs, "client jobs")->check(CLI::Range(1, 10000000));
  run->add_option("--threads", c.threads, "worker threads per job")->check(CLI::Range(1, 4096));
  run->add_option("--inflight", c.inflight, "events in flight per job")->check(CLI::Range(1, 1 << 20));
  run->add_option("--rtt-ms", rtt_ms, "round trip between a job and the GPU site")->check(CLI::Range(0.0, 1e6));
  run->add_option("--link-gbit", link_gbit, "each job's link, Gbit/s each way; 0: unlimited")
      ->check(CLI::Range(0.0, 1e6));
  run->add_option("--gpus", gpus, "MODEL=N: GPUs serving only that model (repeatable, or comma-separated)")
      ->delimiter(',');
  run->add_option("--shared-gpus", c.shared_gpus, "GPUs serving every model not given to --gpus")
      ->check(CLI::Range(0, 1000000));
  run->add_option("--max-batch", c.batching.max_batch, "requests per batch; 0: no limit");
  run->add_option("--preferred-batch", c.batching.preferred, "preferred batch sizes")->delimiter(',');
  run->add_option("--seconds", c.seconds, "simulated seconds")->check(CLI::Range(1e-3, 1e9));
  run->add_option("--warmup", c.warmup, "simulated seconds left out of the figures")->check(CLI::Range(0.0, 1e9));
  run->add_option("--seed", c.seed, "seed");
  CLI11_PARSE(app, argc, argv);

  if (*run) {
    try {
      const auto available = offload::kernel_registry::builtin();
      c.workload = offload::app::make_workload(workload, available, "", 0, 0);
      c.profile = offload::load_device_profile(offload::app::find_data_file("profiles", profile));
      c.rtt = rtt_ms * 1e-3;
      c.link_bytes_per_s = link_gbit * 1e9 / 8;
      for (const auto& g : gpus) {
        const auto eq = g.find('=');
        if (eq == std::string::npos) throw std::invalid_argument("--gpus " + g + ": not MODEL=N");
        c.gpus[g.substr(0, eq)] = std::stoi(g.substr(eq + 1));
      }
      auto base = c;
      base.offload = false;
      const auto remote = offload::sim::run_system(c);
      const auto local = offload::sim::run_system(base);
      std::printf(
          "offload-sim run: workload %s, profile %s (%s), %d jobs x %d threads, %d in flight, rtt %.3g ms, "
          "%.0f s simulated (%.0f s warm-up), seed %llu\n",
          c.workload.name.c_str(), c.profile.path.c_str(), c.profile.device.c_str(), c.jobs, c.threads, c.inflight,
          rtt_ms, c.seconds, c.warmup, (unsigned long long)c.seed);
      std::printf(
          "events/s per job: %.4f with the GPUs, %.4f CPU-only, gain %.4f; round trip mean %.3f ms; "
          "%.1f MB/s into the GPU site\n",
          remote.events_per_s_per_job, local.events_per_s_per_job,
          remote.events_per_s_per_job / local.events_per_s_per_job, 1e3 * remote.mean_round_trip,
          remote.bytes_in_per_s / 1e6);
      for (const auto& [name, busy] : remote.busy) std::printf("GPU group %s: busy %.3f\n", name.c_str(), busy);
      std::printf("simulated events: %llu\n", (unsigned long long)(remote.simulated_events + local.simulated_events));
      return 0;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "offload-sim: %s\n", e.what());
      return 2;
    }
  }

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
