#include "plan.hpp"

#include <cmath>
#include <stdexcept>

namespace offload::sim {
namespace {

/// `jobs` jobs, model `m` on `gpus` GPUs of its own, every other model on as many GPUs as jobs
/// (so that only `m` can saturate).
system_result on_gpus(const plan_config& p, const std::string& m, int jobs, int gpus) {
  auto c = p.base;
  c.jobs = jobs;
  c.rtt = 0;
  c.gpus = {{m, gpus}};
  c.shared_gpus = jobs;
  return run_system(c);
}

}  // namespace

plan_result make_plan(const plan_config& p) {
  if (!(p.cores >= p.base.threads)) throw std::invalid_argument("the campaign needs at least one job's cores");
  if (!(p.slowdown > 0 && p.slowdown < 1)) throw std::invalid_argument("the slowdown must be in (0, 1)");
  plan_result r;
  r.jobs = int(std::ceil(p.cores / p.base.threads));
  auto cpu = p.base;
  cpu.offload = false;
  cpu.jobs = r.jobs;
  const auto base = run_system(cpu);
  if (base.events < 20)
    throw std::invalid_argument("simulate longer: the CPU-only campaign finished " + std::to_string(base.events) +
                                " events after the warm-up (20 at least)");
  r.cpu_only_events_per_s_per_job = base.events_per_s_per_job;

  std::vector<std::string> models;
  for (const auto& m : p.base.workload.modules) models.push_back(m.kernel);
  for (const auto& m : models) {
    // `jobs` jobs on one GPU against the same jobs (the same draws) with a GPU each: double the
    // jobs until they run `slowdown` slower, then bisect.
    auto fits = [&](int jobs) {
      const auto one = on_gpus(p, m, jobs, 1), own = on_gpus(p, m, jobs, jobs);
      const double fe = one.front_end_busy.count(m) > 0 ? one.front_end_busy.at(m) : 0.0;
      const double site = p.base.site_bytes_per_s > 0 ? one.bytes_in_per_s / p.base.site_bytes_per_s : 0.0;
      r.sweep.push_back(
          {m, jobs, one.events_per_s_per_job, own.events_per_s_per_job, one.busy.at(m), one.stages[5].p50, fe, site});
      return one.events_per_s_per_job >= (1 - p.slowdown) * own.events_per_s_per_job;
    };
    int good = 0, bad = 0;
    for (int j = 1; j <= p.max_jobs; j *= 2) {
      if (fits(j)) {
        good = j;
      } else {
        bad = j;
        break;
      }
    }
    while (bad > 0 && bad - good > std::max(1, good / 32)) {
      const int mid = (good + bad) / 2;
      (fits(mid) ? good : bad) = mid;
    }
    if (good == 0) throw std::invalid_argument("model '" + m + "': one job alone saturates a GPU");
    model_plan mp;
    mp.model = m;
    mp.jobs_per_gpu = good;
    mp.cores_per_gpu = double(good) * p.base.threads;
    mp.gpus = (r.jobs + good - 1) / good;
    mp.limit_reached = bad == 0;
    // Which stage saturates first: the busiest at the first point past saturation.
    const int at = bad > 0 ? bad : good;
    for (const auto& pt : r.sweep)
      if (pt.model == m && pt.jobs == at) {
        const std::pair<const char*, double> stages[] = {
            {"GPU compute", pt.busy}, {"server front end", pt.front_end_busy}, {"site link", pt.site_link_use}};
        for (const auto& [name, use] : stages)
          if (mp.limit.empty() || use > mp.limit_use) {
            mp.limit = name;
            mp.limit_use = use;
          }
      }
    r.models.push_back(mp);
  }

  for (const auto& [name, rtt] : p.distances) {
    auto c = p.base;
    c.jobs = r.jobs;
    c.rtt = rtt;
    c.gpus.clear();
    for (const auto& mp : r.models) c.gpus[mp.model] = mp.gpus;
    const auto s = run_system(c);
    r.distances.push_back({name, rtt, s.events_per_s_per_job, s.events_per_s_per_job / r.cpu_only_events_per_s_per_job,
                           s.stages[5].p50, s.bytes_in_per_s, s.busy});
  }
  return r;
}

}  // namespace offload::sim
