#include "system.hpp"

#include "shared_host.hpp"

#include <algorithm>
#include <cmath>
#include <deque>
#include <memory>
#include <random>
#include <stdexcept>
#include <vector>

namespace offload::sim {
namespace {

/// Quantiles from a histogram of 200 log-spaced bins per decade, 100 ns to 10^4 s (error < 0.6%).
class histogram {
 public:
  void add(double v) {
    ++m_count;
    m_sum += v;
    const double x = std::log10(std::max(v, lo)) - std::log10(lo);
    const auto bin = std::min<std::size_t>(m_bins.size() - 1, std::size_t(x * per_decade));
    ++m_bins[bin];
  }
  summary get() const {
    summary s;
    s.count = m_count;
    if (m_count == 0) return s;
    s.mean = m_sum / double(m_count);
    s.p50 = quantile(0.5);
    s.p90 = quantile(0.9);
    s.p99 = quantile(0.99);
    return s;
  }

 private:
  static constexpr double lo = 1e-7;
  static constexpr int per_decade = 200;
  double quantile(double q) const {
    const double want = q * double(m_count);
    double seen = 0;
    for (std::size_t b = 0; b < m_bins.size(); ++b) {
      seen += double(m_bins[b]);
      if (seen >= want) return lo * std::pow(10.0, (double(b) + 0.5) / per_decade);
    }
    return lo * std::pow(10.0, 11.0);
  }
  std::vector<std::uint64_t> m_bins = std::vector<std::uint64_t>(11 * per_decade, 0);
  std::uint64_t m_count = 0;
  double m_sum = 0;
};

/// A link shared in order of arrival: a message's bytes go out after the ones before it.
struct fifo_link {
  double bytes_per_s = 0, free_at = 0;
  /// The time the message's last byte has gone, when it starts now.
  double pass(double now, double bytes) {
    if (bytes_per_s <= 0) return now;
    free_at = std::max(free_at, now) + bytes / bytes_per_s;
    return free_at;
  }
};

/// A server's front end: `threads` servers taking requests first come, first served.
struct front_end {
  std::vector<double> free_at;  // by thread: when it is free
  double busy = 0;              // thread-seconds of work taken
  /// The time a request arriving now, taking `cost` seconds of a thread, leaves the front end.
  double pass(double now, double cost) {
    auto t = std::min_element(free_at.begin(), free_at.end());
    *t = std::max(*t, now) + cost;
    busy += cost;
    return *t;
  }
};

enum class task_kind : std::uint8_t { acquire, finish, fallback };
struct task {
  double cpu;
  task_kind what;
  std::uint32_t id;  // the event
};

struct job {
  int free_threads = 0;
  std::deque<task> tasks;
  fifo_link out, back;
  std::vector<std::uint32_t> rr;                   // by group: the next GPU in turn
  std::vector<std::uint32_t> outstanding;          // by GPU (global index)
  std::vector<std::deque<std::uint32_t>> waiting;  // by GPU: requests waiting for a credit
};

struct event {
  std::uint32_t job, pending;
  std::uint64_t key;
  double started, after_cpu;
};

enum class request_state : std::uint8_t { open, remote, fallback };
struct request {
  std::uint32_t event, module, gpu, gen;  // gen: the slot's use, so that a stale timer can tell
  request_state state;
  double items, bytes_in, bytes_out, created, sent, arrived, started, served;
};

struct gpu_group {
  std::string name;
  std::uint32_t first = 0, count = 0;  // global GPU indices first .. first + count
};

class model {
 public:
  explicit model(const system_config& config) : c(config), rng(config.seed) {
    check();
    cpu_scale = 1;
    if (c.host_cores > 0) {
      host = std::make_unique<shared_host>(s, c.host_cores, c.offload ? c.jobs * c.costs.tx_progress_cores : 0.0);
    } else if (c.offload && c.costs.tx_progress_cores > 0) {
      if (c.costs.tx_progress_cores >= c.threads)
        throw std::invalid_argument("the progress thread's cores (calibration) must be below the job's threads");
      cpu_scale = double(c.threads) / (double(c.threads) - c.costs.tx_progress_cores);
    }
    profile = c.profile;
    profile.time_scale = c.time_scale;
    for (const auto& m : c.workload.modules) {
      local.push_back(!c.offload || c.local_models.count(m.kernel) > 0);
      remote_modules += local.back() ? 0 : 1;
    }
    for (const auto& name : c.local_models)
      if (std::none_of(c.workload.modules.begin(), c.workload.modules.end(),
                       [&](const auto& m) { return m.kernel == name; }))
        throw std::invalid_argument("local model '" + name + "': the workload has no such model");
    if (c.offload) make_gpus();
    jobs.resize(std::size_t(c.jobs));
    for (auto& j : jobs) {
      j.free_threads = c.threads;
      j.out.bytes_per_s = j.back.bytes_per_s = c.link_bytes_per_s;
      // Each job starts its round robin at its own GPU, as jobs that pick a server each would.
      j.rr.resize(groups.size());
      for (std::size_t g = 0; g < groups.size(); ++g) j.rr[g] = std::uint32_t(&j - jobs.data()) % groups[g].count;
      j.outstanding.assign(servers.size(), 0);
      if (c.credits > 0) j.waiting.resize(servers.size());
    }
    site_in.bytes_per_s = site_out.bytes_per_s = c.site_bytes_per_s;
  }

  system_result run() {
    for (std::uint32_t j = 0; j < jobs.size(); ++j)
      for (int e = 0; e < c.inflight; ++e) start_event(j);
    s.run(c.seconds);
    const double window = c.seconds - c.warmup;
    r.events_per_s_per_job = double(r.events) / window / double(c.jobs);
    r.event_time = event_hist.get();
    for (std::size_t k = 0; k < 6; ++k) r.stages[k] = stage_hist[k].get();
    r.mean_round_trip = r.stages[5].mean;
    r.bytes_in_per_s = bytes_in / window;
    r.bytes_out_per_s = bytes_out / window;
    for (const auto& g : groups) {
      double busy = 0;
      for (std::uint32_t i = 0; i < g.count; ++i) busy += servers[g.first + i]->busy_time();
      r.busy[g.name] = busy / double(g.count) / c.seconds;
      r.group_gpus[g.name] = int(g.count);
      if (c.front_end.threads > 0) {
        double fe = 0;
        for (std::uint32_t i = 0; i < g.count; ++i) fe += fronts[g.first + i].busy;
        r.front_end_busy[g.name] = fe / double(g.count) / double(c.front_end.threads) / c.seconds;
      }
    }
    r.events_open = r.events_started - r.events_finished;
    r.requests_open = r.requests - r.remote - r.fallbacks;
    r.simulated_events = s.events_run();
    return r;
  }

 private:
  void check() const {
    if (c.jobs < 1 || c.threads < 1 || c.inflight < 1)
      throw std::invalid_argument("jobs, threads and inflight must be >= 1");
    if (!(c.seconds > c.warmup && c.warmup >= 0)) throw std::invalid_argument("seconds must exceed the warm-up");
    if (!(c.time_scale > 0) || !std::isfinite(c.time_scale)) throw std::invalid_argument("time scale must be > 0");
    for (double v : {c.rtt, c.link_bytes_per_s, c.site_bytes_per_s, c.eager_limit_bytes, c.timeout, c.host_cores})
      if (!(v >= 0) || !std::isfinite(v))
        throw std::invalid_argument("round trip, bandwidths, eager limit, timeout and host cores must be >= 0");
    if (c.credits < 0) throw std::invalid_argument("credits must be >= 0");
    const auto& f = c.front_end;
    if (f.threads < 0 || !(f.s_per_request >= 0) || !(f.s_per_byte >= 0) || !std::isfinite(f.s_per_request) ||
        !std::isfinite(f.s_per_byte))
      throw std::invalid_argument("the front end's threads and costs must be >= 0");
    if (!c.offload && !(app::cpu_ms_per_event(c.workload) > 0))
      throw std::invalid_argument("workload " + c.workload.name +
                                  " gives no CPU cost per event: its CPU-only run cannot be simulated");
    const auto& k = c.costs;
    for (double v : {k.tx_queue_s, k.out_fixed_s, k.out_s_per_byte, k.back_fixed_s, k.back_s_per_byte,
                     k.batch_overhead_s, k.tx_progress_cores})
      if (!(v >= 0) || !std::isfinite(v)) throw std::invalid_argument("library costs must be >= 0");
  }

  // GPU groups: one per listed model, one shared by the others. A GPU serves its models as
  // kinds of one batching server (the module's index), so models on one GPU share its slots.
  void make_gpus() {
    const auto& mods = c.workload.modules;
    timing.resize(mods.size());
    group_of.resize(mods.size());
    auto batching = c.batching;
    batching.concurrency = c.profile.concurrency;
    for (const auto& m : mods) {
      const auto sv = c.serving.find(m.kernel);
      batching.max_items.push_back(sv != c.serving.end() ? sv->second.max_batch_items : 0);
      batching.instances.push_back(sv != c.serving.end() ? sv->second.instances : 0);
    }
    for (std::size_t i = 0; i < mods.size(); ++i) {
      if (local[i]) continue;  // runs on the job's CPU: no GPU
      timing[i] = c.profile.find(mods[i].kernel);
      if (timing[i] == nullptr && !(c.cpu_backend && mods[i].model))
        throw std::invalid_argument("device profile " + c.profile.path + " has no model '" + mods[i].kernel + "'");
      const auto listed = c.gpus.find(mods[i].kernel);
      const std::string name = listed != c.gpus.end() ? mods[i].kernel : "shared";
      const int count = listed != c.gpus.end() ? listed->second : c.shared_gpus;
      if (count < 1) throw std::invalid_argument("model '" + mods[i].kernel + "' has no GPU to run on");
      auto g = std::find_if(groups.begin(), groups.end(), [&](const gpu_group& x) { return x.name == name; });
      if (g == groups.end()) {
        groups.push_back({name, std::uint32_t(servers.size()), std::uint32_t(count)});
        const auto& cfg = batching;
        batching_server::run_fn run_on_host;  // a CPU receiver on the shared host computes there
        if (host && c.cpu_backend)
          run_on_host = [this](double seconds, std::function<void()> done) { host->start(seconds, std::move(done)); };
        for (int n = 0; n < count; ++n)
          servers.push_back(std::make_unique<batching_server>(
              s, cfg,
              [this](std::size_t kind, double items) {
                const auto& m = c.workload.modules[kind];
                const double device = c.cpu_backend && m.model ? items * m.cpu_ms * ms / m.items_mean * c.time_scale
                                                               : profile.batch_seconds(*timing[kind], items, 0, 0);
                return device + c.costs.batch_overhead_s;
              },
              run_on_host));
        fronts.resize(servers.size(), front_end{std::vector<double>(std::size_t(c.front_end.threads), 0.0), 0});
        g = groups.end() - 1;
      }
      group_of[i] = std::uint32_t(g - groups.begin());
    }
  }

  // A job's worker threads take its CPU tasks in order.
  void push(std::uint32_t j, task t) {
    jobs[j].tasks.push_back(t);
    dispatch(j);
  }
  void dispatch(std::uint32_t j) {
    auto& jb = jobs[j];
    while (jb.free_threads > 0 && !jb.tasks.empty()) {
      const task t = jb.tasks.front();
      jb.tasks.pop_front();
      --jb.free_threads;
      if (t.what == task_kind::acquire) events[t.id].started = s.now();  // as offload-run: when a worker takes it
      auto then = [this, j, t] {
        ++jobs[j].free_threads;
        done(j, t);
        dispatch(j);
      };
      if (host)
        host->start(t.cpu, std::move(then));
      else
        s.after(t.cpu * cpu_scale, std::move(then));
    }
  }
  void done(std::uint32_t j, const task& t) {
    switch (t.what) {
      case task_kind::acquire: acquired(t.id); break;
      case task_kind::finish: finished(j, t.id); break;
      case task_kind::fallback: module_done(t.id); break;
    }
  }

  void start_event(std::uint32_t j) {
    const std::uint64_t key = rng();
    const double factor = app::cpu_factor(c.workload, key);
    const double scale = ms * c.time_scale;
    double before = c.workload.before_ms * scale * factor;
    for (std::size_t i = 0; i < c.workload.modules.size(); ++i)  // modules on the job's CPU (all, CPU-only)
      if (local[i]) before += c.workload.modules[i].cpu_ms * scale;
    const event ev{j, remote_modules, key, s.now(), c.workload.after_ms * scale * factor};
    const auto id = take(events, free_events, ev);
    ++r.events_started;
    push(j, {before, task_kind::acquire, id});
  }
  void acquired(std::uint32_t e) {
    if (remote_modules == 0) {
      push(events[e].job, {events[e].after_cpu, task_kind::finish, e});
      return;
    }
    for (std::uint32_t i = 0; i < c.workload.modules.size(); ++i)
      if (!local[i]) submit(e, i);
  }
  void module_done(std::uint32_t e) {
    if (--events[e].pending == 0) push(events[e].job, {events[e].after_cpu, task_kind::finish, e});
  }
  void finished(std::uint32_t j, std::uint32_t e) {
    ++r.events_finished;
    if (s.now() >= c.warmup) {
      ++r.events;
      event_hist.add(s.now() - events[e].started);
    }
    free_events.push_back(e);
    start_event(j);
  }

  // A request: routed to one GPU of its group, waits for a credit, goes out, is served, comes back.
  void submit(std::uint32_t e, std::uint32_t i) {
    const auto& m = c.workload.modules[i];
    const auto& ev = events[e];
    auto& jb = jobs[ev.job];
    // A model's items are drawn per event; a kernel module's request is one item, as the
    // receiver counts it (kernel::items).
    const double items = m.model ? double(m.items_for(ev.key ^ (std::uint64_t(i) << 20))) : 1.0;
    const auto& g = groups[group_of[i]];
    std::uint32_t gpu = g.first;
    if (c.route == routing::round_robin) {
      gpu = g.first + jb.rr[group_of[i]]++ % g.count;
    } else {  // least outstanding from this job's view, the lowest index on a tie
      for (std::uint32_t k = g.first + 1; k < g.first + g.count; ++k)
        if (jb.outstanding[k] < jb.outstanding[gpu]) gpu = k;
    }
    const double in = m.model ? items * m.features * 4.0 : 0.0, out = m.model ? items * m.outputs * 4.0 : 0.0;
    const auto id = take(requests, free_requests,
                         request{e, i, gpu, ++generation, request_state::open, items, in, out, s.now(), 0, 0, 0, 0});
    ++r.requests;
    ++jb.outstanding[gpu];
    if (c.timeout > 0) s.after(c.timeout, [this, id, gen = requests[id].gen] { timed_out(id, gen); });
    if (c.credits > 0 && jb.outstanding[gpu] > std::uint32_t(c.credits)) {
      jb.waiting[gpu].push_back(id);
      return;
    }
    send(id);
  }
  void send(std::uint32_t id) {
    s.after(c.costs.tx_queue_s, [this, id] {
      auto& q = requests[id];
      q.sent = s.now();
      if (q.sent >= c.warmup) bytes_in += q.bytes_in;
      const double wire_done = jobs[events[q.event].job].out.pass(s.now(), q.bytes_in);
      s.after(wire_done - s.now(), [this, id] {
        auto& q2 = requests[id];
        const double site_done = site_in.pass(s.now(), q2.bytes_in);
        s.after(site_done - s.now() + latency(q2.bytes_in, c.costs.out_fixed_s, c.costs.out_s_per_byte),
                [this, id] { arrive(id); });
      });
    });
  }
  double latency(double bytes, double fixed, double per_byte) const {
    const bool rendezvous = c.eager_limit_bytes > 0 && bytes > c.eager_limit_bytes;
    return c.rtt / 2 + (rendezvous ? c.rtt : 0) + fixed + bytes * per_byte;
  }
  void arrive(std::uint32_t id) {
    auto& q = requests[id];
    q.arrived = s.now();
    if (c.front_end.threads == 0) {
      decoded(id);
      return;
    }
    // The server's front end takes it first (its wait and work count in rx_queue).
    const double leave =
        fronts[q.gpu].pass(s.now(), (c.front_end.s_per_request + q.bytes_in * c.front_end.s_per_byte) * c.time_scale);
    ++r.front_end_passed;
    s.after(leave - s.now(), [this, id] { decoded(id); });
  }
  void decoded(std::uint32_t id) {
    auto& q = requests[id];
    const int job = int(events[q.event].job);
    servers[q.gpu]->submit(
        q.module, q.items,
        [this, id](double started) {
          auto& q2 = requests[id];
          q2.started = started;
          q2.served = s.now();
          const double site_done = site_out.pass(s.now(), q2.bytes_out);
          s.after(site_done - s.now(), [this, id] {
            auto& q3 = requests[id];
            const double wire_done = jobs[events[q3.event].job].back.pass(s.now(), q3.bytes_out);
            s.after(wire_done - s.now() + latency(q3.bytes_out, c.costs.back_fixed_s, c.costs.back_s_per_byte),
                    [this, id] { replied(id); });
          });
        },
        job);  // (the receiver's scheduler serves its peers, here the client jobs, in turn)
  }
  void replied(std::uint32_t id) {
    auto& q = requests[id];
    auto& jb = jobs[events[q.event].job];
    --jb.outstanding[q.gpu];
    if (c.credits > 0 && !jb.waiting[q.gpu].empty()) {
      const auto next = jb.waiting[q.gpu].front();
      jb.waiting[q.gpu].pop_front();
      send(next);
    }
    if (q.state != request_state::open) {
      ++r.late_replies;
      free_requests.push_back(id);
      return;
    }
    finish_request(q, request_state::remote);
    if (q.created >= c.warmup) {
      const double st[6] = {q.sent - q.created,   q.arrived - q.sent, q.started - q.arrived,
                            q.served - q.started, s.now() - q.served, s.now() - q.created};
      for (std::size_t k = 0; k < 6; ++k) stage_hist[k].add(st[k]);
      bytes_out += q.bytes_out;
    }
    free_requests.push_back(id);
    module_done(q.event);
  }
  void timed_out(std::uint32_t id, std::uint32_t gen) {
    auto& q = requests[id];
    if (q.gen != gen || q.state != request_state::open) return;  // answered (the slot may be reused)
    finish_request(q, request_state::fallback);
    push(events[q.event].job, {c.workload.modules[q.module].cpu_ms * ms * c.time_scale, task_kind::fallback, q.event});
  }
  /// A slot of `pool` (a freed one first) holding `v`.
  template <typename T> static std::uint32_t take(std::vector<T>& pool, std::vector<std::uint32_t>& free, const T& v) {
    if (free.empty()) {
      pool.push_back(v);
      return std::uint32_t(pool.size() - 1);
    }
    const auto id = free.back();
    free.pop_back();
    pool[id] = v;
    return id;
  }
  void finish_request(request& q, request_state how) {
    if (q.state != request_state::open) {
      ++r.finished_twice;
      return;
    }
    q.state = how;
    ++(how == request_state::remote ? r.remote : r.fallbacks);
  }

  static constexpr double ms = 1e-3;
  const system_config& c;
  device_profile profile;  // c.profile at c.time_scale
  simulation s;
  std::unique_ptr<shared_host> host;  // with c.host_cores
  std::mt19937_64 rng;
  double cpu_scale = 1;
  std::vector<const model_timing*> timing;  // by module
  std::vector<std::uint32_t> group_of;      // by module
  std::vector<gpu_group> groups;
  std::vector<std::unique_ptr<batching_server>> servers;
  std::vector<front_end> fronts;  // by GPU, as servers
  std::vector<bool> local;        // by module: runs on the job's CPU
  std::uint32_t remote_modules = 0;
  std::vector<job> jobs;
  std::vector<event> events;  // slots, reused once an event or request is done
  std::vector<request> requests;
  std::vector<std::uint32_t> free_events, free_requests;
  std::uint32_t generation = 0;
  fifo_link site_in, site_out;
  histogram event_hist;
  std::array<histogram, 6> stage_hist;
  double bytes_in = 0, bytes_out = 0;
  system_result r;
};

}  // namespace

system_result run_system(const system_config& c) {
  return model(c).run();
}

}  // namespace offload::sim
