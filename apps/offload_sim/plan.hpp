#pragma once
// offload-sim plan: what a campaign needs, found by sweeping the system model. For each model
// of the workload alone on one GPU: the jobs (and so cores) one GPU serves before it saturates;
// then, for a campaign of N cores: the GPUs of each model, the bandwidth into the GPU site, and
// the gain over CPU-only at each distance, simulated with those GPUs.

#include "system.hpp"

#include <string>
#include <vector>

namespace offload::sim {

struct plan_config {
  system_config base;    ///< workload, profile, costs, threads, inflight, batching, seconds, seed
  double cores = 10000;  ///< the campaign's client cores (jobs = cores / threads)
  std::vector<std::pair<std::string, double>> distances{{"same-node", 0}, {"same-dc", 1e-4}, {"far-dc", 25e-3}};
  /// A GPU is saturated when the jobs it serves run this much slower than with a GPU of their own.
  double slowdown = 0.01;
  int max_jobs = 4096;  ///< the sweep's limit per GPU
};

/// One point of a model's sweep: `jobs` jobs on one GPU of that model.
struct plan_point {
  std::string model;
  int jobs = 0;
  double events_per_s_per_job = 0;
  double own_gpu_events_per_s_per_job = 0;  ///< the same jobs with a GPU each
  double busy = 0, round_trip_p50 = 0;
  double front_end_busy = 0;  ///< the model's GPU's front end (0: none modelled)
  double site_link_use = 0;   ///< bytes into the site over the site link's capacity (0: unlimited)
};

struct model_plan {
  std::string model;
  int jobs_per_gpu = 0;        ///< the most jobs one GPU serves within the slowdown
  double cores_per_gpu = 0;    ///< jobs_per_gpu x threads
  int gpus = 0;                ///< for the campaign: ceil(jobs / jobs_per_gpu)
  bool limit_reached = false;  ///< max_jobs served without saturating
  /// The stage that saturates first: the busiest of "GPU compute" (the GPU's busy fraction),
  /// "server front end" and "site link" at the first point past saturation (or the last point).
  std::string limit;
  double limit_use = 0;  ///< its busy fraction there
};

struct distance_plan {
  std::string name;
  double rtt = 0;
  double events_per_s_per_job = 0, gain = 0, round_trip_p50 = 0;
  double bytes_in_per_s = 0;  ///< into the GPU site, the whole campaign
  std::map<std::string, double> busy;
};

struct plan_result {
  double cpu_only_events_per_s_per_job = 0;
  int jobs = 0;
  std::vector<plan_point> sweep;
  std::vector<model_plan> models;
  std::vector<distance_plan> distances;
};

plan_result make_plan(const plan_config& p);

}  // namespace offload::sim
