#pragma once
// The whole system as a simulation: client jobs (worker threads, events in flight, the
// workload's CPU work and modules), one link per job to the GPU site (round trip, bandwidth),
// and GPU servers from a device profile with dynamic batching, per model or shared.

#include "apps/common/workload.hpp"
#include "batching_server.hpp"

#include <offload/device_profile.hpp>

#include <cstdint>
#include <map>
#include <string>

namespace offload::sim {

struct system_config {
  app::workload workload;
  device_profile profile;
  int jobs = 1;
  int threads = 4;
  int inflight = 8;
  bool offload = true;          ///< false: every module runs on the job's CPU (the CPU-only baseline)
  double rtt = 0;               ///< seconds, round trip between a job and the GPU site
  double link_bytes_per_s = 0;  ///< per job and direction; 0: unlimited
  /// GPUs serving each model (by kernel name); a model not listed goes to `shared_gpus` GPUs
  /// that serve every such model.
  std::map<std::string, int> gpus;
  int shared_gpus = 1;
  batching_config batching;  ///< per GPU (concurrency from the profile)
  double seconds = 60;       ///< simulated time
  double warmup = 10;        ///< seconds left out of the figures
  std::uint64_t seed = 1;
};

struct system_result {
  std::uint64_t events = 0;  ///< finished in the measured window
  double events_per_s_per_job = 0;
  double mean_round_trip = 0;          ///< seconds, requests finished in the window
  double bytes_in_per_s = 0;           ///< request bytes into the GPU site
  std::map<std::string, double> busy;  ///< per GPU group ("model" or "shared"): mean busy fraction
  std::uint64_t simulated_events = 0;  ///< discrete events the simulation ran (its cost)
};

/// Runs the system; throws std::invalid_argument for a bad configuration (no jobs or threads,
/// zero GPUs for a model, a model the profile lacks, negative times).
system_result run_system(const system_config& c);

}  // namespace offload::sim
