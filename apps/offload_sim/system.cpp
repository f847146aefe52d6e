#include "system.hpp"

#include <deque>
#include <functional>
#include <memory>
#include <random>
#include <stdexcept>
#include <vector>

namespace offload::sim {
namespace {

/// One client job: a pool of worker threads taking CPU tasks in order.
struct job {
  int free_threads = 0;
  std::deque<std::pair<double, std::function<void()>>> tasks;  // (CPU seconds, then)
};

struct group {
  std::string name;
  std::vector<std::unique_ptr<batching_server>> servers;
  std::size_t next = 0;
};

}  // namespace

system_result run_system(const system_config& c) {
  if (c.jobs < 1 || c.threads < 1 || c.inflight < 1)
    throw std::invalid_argument("jobs, threads and inflight must be >= 1");
  if (!(c.seconds > c.warmup && c.warmup >= 0)) throw std::invalid_argument("seconds must exceed the warm-up");
  if (c.rtt < 0 || c.link_bytes_per_s < 0) throw std::invalid_argument("round trip and bandwidth must be >= 0");
  simulation s;
  std::mt19937_64 rng(c.seed);
  // GPU groups: one per listed model, one shared by the others. A GPU serves its models as
  // kinds of one batching server (the module's index), so models on one GPU share its slots.
  std::vector<const model_timing*> timing(c.workload.modules.size(), nullptr);
  std::vector<std::string> group_of(c.workload.modules.size());
  std::map<std::string, group> groups;
  if (c.offload)
    for (std::size_t i = 0; i < c.workload.modules.size(); ++i) {
      const auto& m = c.workload.modules[i];
      timing[i] = c.profile.find(m.kernel);
      if (timing[i] == nullptr)
        throw std::invalid_argument("device profile " + c.profile.path + " has no model '" + m.kernel + "'");
      const auto listed = c.gpus.find(m.kernel);
      group_of[i] = listed != c.gpus.end() ? m.kernel : "shared";
      const int count = listed != c.gpus.end() ? listed->second : c.shared_gpus;
      if (count < 1) throw std::invalid_argument("model '" + m.kernel + "' has no GPU to run on");
      auto& g = groups[group_of[i]];
      if (!g.servers.empty()) continue;
      g.name = group_of[i];
      auto cfg = c.batching;
      cfg.concurrency = c.profile.concurrency;
      for (int n = 0; n < count; ++n)
        g.servers.push_back(std::make_unique<batching_server>(s, cfg, [&c, &timing](std::size_t kind, double items) {
          return c.profile.batch_seconds(*timing[kind], items, 0, 0);
        }));
    }

  std::vector<job> jobs(static_cast<std::size_t>(c.jobs));
  system_result r;
  double rt_sum = 0, bytes = 0;
  std::uint64_t rt_count = 0;
  const double ms = 1e-3;

  std::function<void(job&)> dispatch = [&](job& j) {
    while (j.free_threads > 0 && !j.tasks.empty()) {
      auto [cpu, then] = std::move(j.tasks.front());
      j.tasks.pop_front();
      --j.free_threads;
      s.after(cpu, [&, then = std::move(then), jp = &j] {
        ++jp->free_threads;
        then();
        dispatch(*jp);
      });
    }
  };
  std::function<void(job&)> start_event = [&](job& j) {
    const std::uint64_t key = rng();
    const double factor = app::cpu_factor(c.workload, key);
    double before = c.workload.before_ms * ms * factor, after = c.workload.after_ms * ms * factor;
    if (!c.offload)
      for (const auto& m : c.workload.modules) before += m.cpu_ms * ms;
    j.tasks.push_back({before, [&, key, after, jp = &j] {
                         auto finish = [&, after, jp] {
                           jp->tasks.push_back({after, [&, jp] {
                                                  if (s.now() >= c.warmup) ++r.events;
                                                  start_event(*jp);
                                                }});
                           dispatch(*jp);
                         };
                         if (!c.offload) {
                           finish();
                           return;
                         }
                         auto pending = std::make_shared<std::size_t>(c.workload.modules.size());
                         for (std::size_t i = 0; i < c.workload.modules.size(); ++i) {
                           const auto& m = c.workload.modules[i];
                           const double items = double(m.items_for(key ^ (i << 20)));
                           const double in_bytes = m.model ? items * m.features * 4.0 : 0.0;
                           const double out_bytes = m.model ? items * m.outputs * 4.0 : 0.0;
                           const double wire =
                               c.link_bytes_per_s > 0 ? (in_bytes + out_bytes) / c.link_bytes_per_s : 0.0;
                           auto& g = groups[group_of[i]];
                           auto* server = g.servers[g.next++ % g.servers.size()].get();  // round robin
                           const double sent = s.now();
                           if (sent >= c.warmup) bytes += in_bytes;
                           s.after(c.rtt / 2 + wire, [&, server, i, items, sent, pending, finish] {
                             server->submit(i, items, [&, sent, pending, finish] {
                               s.after(c.rtt / 2, [&, sent, pending, finish] {
                                 if (sent >= c.warmup) {
                                   rt_sum += s.now() - sent;
                                   ++rt_count;
                                 }
                                 if (--*pending == 0) finish();
                               });
                             });
                           });
                         }
                       }});
    dispatch(j);
  };
  for (auto& j : jobs) {
    j.free_threads = c.threads;
    for (int e = 0; e < c.inflight; ++e) start_event(j);
  }
  s.run(c.seconds);
  const double window = c.seconds - c.warmup;
  r.events_per_s_per_job = double(r.events) / window / double(c.jobs);
  r.mean_round_trip = rt_count ? rt_sum / double(rt_count) : 0.0;
  r.bytes_in_per_s = bytes / window;
  for (auto& [name, g] : groups) {
    double busy = 0;
    for (auto& srv : g.servers) busy += srv->busy_time();
    r.busy[name] = busy / double(g.servers.size()) / c.seconds;
  }
  r.simulated_events = s.events_run();
  return r;
}

}  // namespace offload::sim
