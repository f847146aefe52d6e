#pragma once
// The whole system as a simulation: client jobs (worker threads sharing the job's cores with
// its progress thread, events in flight, the workload's CPU work and modules, credits, routing,
// fallback on timeout), the library's own costs (apps/common/calibration.hpp), links (round
// trip, each job's bandwidth, a shared site link, the rendezvous round trip of messages above
// the eager limit) and GPU servers from a device profile with dynamic batching, one model per
// GPU group or shared.

#include "apps/common/calibration.hpp"
#include "apps/common/workload.hpp"
#include "batching_server.hpp"

#include <offload/device_profile.hpp>

#include <array>
#include <cstdint>
#include <map>
#include <set>
#include <string>

namespace offload::sim {

enum class routing { round_robin, least_outstanding };

/// A GPU server's front end (Triton's gRPC endpoint and request decoding): every request passes
/// it before the batcher, taking `s_per_request` + bytes x `s_per_byte` of one of its `threads`
/// (first come, first served). threads 0: no front end.
struct front_end_config {
  int threads = 0;
  double s_per_request = 0;
  double s_per_byte = 0;
};

/// How a GPU serves one model (Triton's model configuration).
struct model_serving {
  std::uint64_t max_batch_items = 0;  ///< items (rows: jets, taus) per batch, Triton's max_batch; 0: none
  std::uint32_t instances = 0;  ///< batches of this model at once on one GPU; 0: the profile's concurrency, shared
};

struct system_config {
  app::workload workload;
  device_profile profile;
  app::library_costs costs;  ///< all 0: the library costs nothing
  int jobs = 1;
  int threads = 4;
  int inflight = 8;
  bool offload = true;  ///< false: every module runs on the job's CPU (the CPU-only baseline)
  /// Every CPU cost of the workload is multiplied by it (offload-run's --time-scale), and so are
  /// the device's times (as offload-run's emulated device keeps its ratio to the client CPU).
  double time_scale = 1;
  /// The receivers run the model modules on their CPU backend: a batch takes its items times the
  /// module's CPU cost per item (the workload's cpu_ms over its mean items), not the profile's
  /// time; kernel modules still take the profile's.
  bool cpu_backend = false;
  /// 0: every job has its `threads` cores to itself. > 0: every job, and the receivers' CPU
  /// backend, share one host of this many cores (shared_host.hpp), the jobs' progress threads
  /// (the calibration's cores) a fixed load on it: a model of runs on one small machine.
  double host_cores = 0;
  double rtt = 0;               ///< seconds, round trip between a job and the GPU site
  double link_bytes_per_s = 0;  ///< each job's link, each direction; 0: unlimited
  double site_bytes_per_s = 0;  ///< the GPU site's link, shared by every job, each direction; 0: unlimited
  /// Messages above it wait one round trip for the rendezvous before their data flows (Open
  /// MPI's TCP BTL: 64 KiB; results/README.md); 0: every message is eager.
  double eager_limit_bytes = 65536;
  /// GPUs serving each model (by kernel name); a model not listed goes to `shared_gpus` GPUs
  /// that serve every such model.
  std::map<std::string, int> gpus;
  int shared_gpus = 1;
  /// Models (kernel names) that run on the job's own CPU, not remotely (a study that offloads
  /// only some models, as the published one-model saturation scans).
  std::set<std::string> local_models;
  front_end_config front_end;                    ///< of every GPU server
  std::map<std::string, model_serving> serving;  ///< by model; a model not listed: batching's limits
  routing route = routing::round_robin;          ///< how a job picks one of a group's GPUs
  int credits = 0;                               ///< requests a job may have outstanding per GPU; 0: no limit
  double timeout = 0;                            ///< seconds before a request falls back to the job's CPU; 0: never
  batching_config batching;                      ///< per GPU (concurrency from the profile)
  double seconds = 60;                           ///< simulated time
  double warmup = 10;                            ///< seconds left out of the figures
  std::uint64_t seed = 1;
};

/// Mean and percentiles of one measured quantity (seconds).
struct summary {
  std::uint64_t count = 0;
  double mean = 0, p50 = 0, p90 = 0, p99 = 0;
};

/// The request stages, as offload-run reports them.
inline constexpr const char* sim_stage_keys[] = {"tx_queue", "net_out", "rx_queue", "kernel", "net_back", "round_trip"};

struct system_result {
  std::uint64_t events = 0;  ///< finished in the measured window
  double events_per_s_per_job = 0;
  summary event_time;  ///< a worker taking an event to its end (as offload-run), events finished in the window
  std::array<summary, 6> stages;       ///< remote requests sent in the window, by sim_stage_keys
  double mean_round_trip = 0;          ///< stages[5].mean
  double bytes_in_per_s = 0;           ///< request bytes into the GPU site
  double bytes_out_per_s = 0;          ///< reply bytes out of it
  std::map<std::string, double> busy;  ///< per GPU group ("model" or "shared"): mean busy fraction
  std::map<std::string, int> group_gpus;
  std::map<std::string, double> front_end_busy;  ///< per GPU group: mean busy fraction of a front end's threads
  std::uint64_t front_end_passed = 0;            ///< requests through a front end (all of them, when there is one)
  // Conservation, over the whole run: every event started either finished or is still in
  // flight; every request finished once, remotely or by its fallback, or is still open.
  std::uint64_t events_started = 0, events_finished = 0, events_open = 0;
  std::uint64_t requests = 0, remote = 0, fallbacks = 0, requests_open = 0, late_replies = 0;
  std::uint64_t finished_twice = 0;    ///< requests finished more than once (a bug if not 0)
  std::uint64_t simulated_events = 0;  ///< discrete events the simulation ran (its cost)
};

/// Runs the system; throws std::invalid_argument for a bad configuration (no jobs or threads,
/// zero GPUs for a model, a model the profile lacks, negative times or rates).
system_result run_system(const system_config& c);

}  // namespace offload::sim
