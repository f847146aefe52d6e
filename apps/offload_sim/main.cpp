// offload-sim: the scale model (docs/planning.md). `queue`: its dynamic-batching server checked
// against queueing theory. `run`: client jobs, the library's costs, links and GPU servers from a
// workload file, a device profile and a calibration file. `plan`: what a campaign needs.
#include "apps/common/calibration.hpp"
#include "apps/common/workload.hpp"
#include "plan.hpp"
#include "queueing.hpp"
#include "system.hpp"

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <exception>
#include <fstream>
#include <string>
#include <vector>

namespace {

using json = nlohmann::ordered_json;
namespace sim = offload::sim;

/// What `run` and `plan` share: the workload, profile and calibration files and the job's shape.
struct common {
  std::string workload = "miniaod", profile = "t4", calibration, kernel = "mlp", backend = "emulated";
  std::vector<std::string> local_models;
  bool no_server_model = false;
  std::uint64_t size = 0;
  double max_wait_us = 0;
  sim::system_config c;
};

void add_common(CLI::App* app, common& o) {
  app->add_option("--workload", o.workload, "workloads/NAME.json or a file");
  app->add_option("--profile", o.profile, "profiles/NAME.json or a file");
  app->add_option("--calibration", o.calibration,
                  "the library's costs, as offload-run --calibrate wrote them; none: the library costs nothing");
  app->add_option("--kernel", o.kernel, "the single workload's kernel (as offload-run's)");
  app->add_option("--size", o.size, "the single workload's input size; 0: the kernel's default");
  app->add_option("--time-scale", o.c.time_scale, "every CPU cost and device time multiplied by this (offload-run's)")
      ->check(CLI::Range(1e-6, 1e6));
  app->add_option("--backend", o.backend,
                  "emulated: model batches take the profile's time; cpu: the receivers compute the models on their CPU "
                  "(a batch takes its items times the workload's CPU cost per item)")
      ->check(CLI::IsMember({"emulated", "cpu"}));
  app->add_option("--threads", o.c.threads, "worker threads (cores) per job")->check(CLI::Range(1, 4096));
  app->add_option("--host-cores", o.c.host_cores,
                  "0: each job has its own cores; N: all jobs and a CPU receiver share one host of N cores")
      ->check(CLI::Range(0.0, 1e6));
  app->add_option("--inflight", o.c.inflight, "events in flight per job")->check(CLI::Range(1, 1 << 20));
  app->add_option("--max-batch", o.c.batching.max_batch, "requests per batch; 0: no limit");
  app->add_option("--preferred-batch", o.c.batching.preferred, "preferred batch sizes")->delimiter(',');
  app->add_option("--max-wait-us", o.max_wait_us, "longest a batch smaller than the preferred sizes waits")
      ->check(CLI::Range(0.0, 1e9));
  app->add_option("--seconds", o.c.seconds, "simulated seconds (each run)")->check(CLI::Range(1e-3, 1e9));
  app->add_option("--warmup", o.c.warmup, "simulated seconds left out of the figures")->check(CLI::Range(0.0, 1e9));
  app->add_option("--seed", o.c.seed, "seed");
  app->add_option("--local-models", o.local_models,
                  "models run on each job's own CPU, not remotely (the published one-model scans offload one)")
      ->delimiter(',');
  app->add_flag("--no-server-model", o.no_server_model,
                "ignore the profile's \"server\" block (front end, Triton's max batch in items, instances)");
}

/// The profile's optional "server" block, which the device-profile reader leaves alone: the
/// front end every request passes and, per model, Triton's max batch in items and instances.
/// Every figure needs its "source".
void load_server_model(const std::string& path, sim::system_config& c) {
  std::ifstream in(path);
  const auto j = json::parse(in, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("server")) return;
  const auto& sv = j["server"];
  auto number = [&](const json& o, const char* key, const std::string& where) {
    if (!o.contains(key) || !o[key].is_number() || !(o[key].get<double>() >= 0))
      throw std::invalid_argument(path + ": " + where + "." + key + ": missing, not a number or negative");
    if (!o.contains("source") || !o["source"].is_string())
      throw std::invalid_argument(path + ": " + where + ": no source");
    return o[key].get<double>();
  };
  if (sv.contains("front_end")) {
    const auto& f = sv["front_end"];
    c.front_end.threads = int(number(f, "threads", "server.front_end"));
    c.front_end.s_per_request = 1e-3 * number(f, "ms_per_request", "server.front_end");
    c.front_end.s_per_byte = 1e-9 * number(f, "ms_per_mb", "server.front_end");
  }
  if (sv.contains("models"))
    for (const auto& [name, m] : sv["models"].items()) {
      sim::model_serving ms;
      const std::string where = "server.models." + name;
      if (m.contains("max_batch_items")) ms.max_batch_items = std::uint64_t(number(m, "max_batch_items", where));
      if (m.contains("instances")) ms.instances = std::uint32_t(number(m, "instances", where));
      c.serving[name] = ms;
    }
}

/// Reads the files `o` names into its configuration.
void load(common& o) {
  o.c.workload = offload::app::make_workload(o.workload, offload::kernel_registry::builtin(), o.kernel, o.size, 0);
  o.c.cpu_backend = o.backend == "cpu";
  o.c.profile = offload::load_device_profile(offload::app::find_data_file("profiles", o.profile));
  if (!o.calibration.empty()) o.c.costs = offload::app::load_calibration(o.calibration);
  if (!o.no_server_model) load_server_model(o.c.profile.path, o.c);
  o.c.local_models = {o.local_models.begin(), o.local_models.end()};
  o.c.batching.max_wait = o.max_wait_us * 1e-6;
}

std::string conditions(const common& o) {
  char line[1024];
  std::snprintf(
      line, sizeof line,
      "SIMULATED (offload-sim): workload %s, %s, profile %s (%s), time scale %g, library costs %s, %d threads "
      "per job, %d in flight, max batch %u, %.4g s simulated per run (%.4g s warm-up), seed %llu",
      o.c.workload.name.c_str(), o.c.cpu_backend ? "models on the receivers' CPU" : "models on the device",
      o.c.profile.path.c_str(), o.c.profile.device.c_str(), o.c.time_scale,
      o.calibration.empty() ? "none" : o.calibration.c_str(), o.c.threads, o.c.inflight, o.c.batching.max_batch,
      o.c.seconds, o.c.warmup, (unsigned long long)o.c.seed);
  std::string text = line;
  if (o.c.front_end.threads > 0) {
    std::snprintf(line, sizeof line, "; server front end %d thread(s), %.4g ms per request + %.4g ms per MB",
                  o.c.front_end.threads, 1e3 * o.c.front_end.s_per_request, 1e9 * o.c.front_end.s_per_byte);
    text += line;
  }
  for (const auto& [name, m] : o.c.serving) {
    std::snprintf(line, sizeof line, "; %s max %llu items per batch, %u instance(s)", name.c_str(),
                  (unsigned long long)m.max_batch_items, m.instances);
    text += line;
  }
  if (!o.c.local_models.empty()) {
    text += "; on the jobs' CPU:";
    for (const auto& m : o.c.local_models) text += " " + m;
  }
  return text;
}

json summary_json(const sim::summary& s) {
  return {{"count", s.count},
          {"mean_ms", 1e3 * s.mean},
          {"p50_ms", 1e3 * s.p50},
          {"p90_ms", 1e3 * s.p90},
          {"p99_ms", 1e3 * s.p99}};
}

json result_json(const sim::system_result& r) {
  json stages = json::object();
  for (std::size_t k = 0; k < 6; ++k) stages[sim::sim_stage_keys[k]] = summary_json(r.stages[k]);
  return {{"events", r.events},
          {"events_per_s_per_job", r.events_per_s_per_job},
          {"event_time", summary_json(r.event_time)},
          {"stages", stages},
          {"bytes_in_per_s", r.bytes_in_per_s},
          {"bytes_out_per_s", r.bytes_out_per_s},
          {"busy", r.busy},
          {"gpus", r.group_gpus},
          {"front_end_busy", r.front_end_busy},
          {"conservation",
           {{"events_started", r.events_started},
            {"events_finished", r.events_finished},
            {"events_open", r.events_open},
            {"requests", r.requests},
            {"remote", r.remote},
            {"fallbacks", r.fallbacks},
            {"requests_open", r.requests_open},
            {"late_replies", r.late_replies},
            {"finished_twice", r.finished_twice}}},
          {"simulated_events", r.simulated_events}};
}

void write_file(const std::string& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
  if (!out) throw std::invalid_argument(path + ": cannot be written");
}

double cpu_seconds() {
  return double(std::clock()) / CLOCKS_PER_SEC;
}

int run_command(common& o, double rtt_ms, double link_gbit, double site_gbit, double eager_kib,
                const std::vector<std::string>& gpus, const std::string& routing, double timeout_ms,
                const std::string& json_path) {
  load(o);
  auto& c = o.c;
  c.rtt = rtt_ms * 1e-3;
  c.link_bytes_per_s = link_gbit * 1e9 / 8;
  c.site_bytes_per_s = site_gbit * 1e9 / 8;
  c.eager_limit_bytes = eager_kib * 1024;
  c.route = routing == "least_outstanding" ? sim::routing::least_outstanding : sim::routing::round_robin;
  c.timeout = timeout_ms * 1e-3;
  for (const auto& g : gpus) {
    const auto eq = g.find('=');
    int n = -1;
    try {
      n = eq == std::string::npos ? -1 : std::stoi(g.substr(eq + 1));
    } catch (const std::exception&) {
    }
    if (n < 0) throw std::invalid_argument("--gpus " + g + ": not MODEL=N with N >= 0");
    c.gpus[g.substr(0, eq)] = n;
  }
  for (const auto& [name, n] : c.gpus)
    if (std::none_of(c.workload.modules.begin(), c.workload.modules.end(),
                     [&](const auto& m) { return m.kernel == name; }))
      throw std::invalid_argument("--gpus " + name + ": the workload has no such model");
  auto base = c;
  base.offload = false;
  const double t0 = cpu_seconds();
  const auto remote = sim::run_system(c);
  const double t1 = cpu_seconds();
  sim::system_result local;  // no CPU-only twin for a workload without CPU costs (the single kernel)
  if (offload::app::cpu_ms_per_event(c.workload) > 0) local = sim::run_system(base);
  const double t2 = cpu_seconds();
  std::printf("offload-sim run: %s\n", conditions(o).c_str());
  std::printf(
      "%d jobs, rtt %.4g ms, job link %s, site link %s, eager limit %.4g KiB, routing %s, credits %d, "
      "timeout %.4g ms\n",
      c.jobs, rtt_ms, link_gbit > 0 ? (std::to_string(link_gbit) + " Gbit/s").c_str() : "unlimited",
      site_gbit > 0 ? (std::to_string(site_gbit) + " Gbit/s").c_str() : "unlimited", eager_kib, routing.c_str(),
      c.credits, timeout_ms);
  const double gain = local.events_per_s_per_job > 0 ? remote.events_per_s_per_job / local.events_per_s_per_job : NAN;
  std::printf("events/s per job: %.4f with the GPUs, %.4f CPU-only, gain %.4f; the system: %.1f events/s\n",
              remote.events_per_s_per_job, local.events_per_s_per_job, gain, remote.events_per_s_per_job * c.jobs);
  std::printf("event time ms: mean %.1f p50 %.1f p99 %.1f\n", 1e3 * remote.event_time.mean, 1e3 * remote.event_time.p50,
              1e3 * remote.event_time.p99);
  std::printf("stages of %llu remote requests (ms):\n%-12s %10s %10s %10s %10s\n",
              (unsigned long long)remote.stages[5].count, "stage", "mean", "p50", "p90", "p99");
  for (std::size_t k = 0; k < 6; ++k)
    std::printf("%-12s %10.3f %10.3f %10.3f %10.3f\n", sim::sim_stage_keys[k], 1e3 * remote.stages[k].mean,
                1e3 * remote.stages[k].p50, 1e3 * remote.stages[k].p90, 1e3 * remote.stages[k].p99);
  std::printf("into the GPU site %.1f MB/s, out %.1f MB/s; per job link %.3f MB/s in\n", remote.bytes_in_per_s / 1e6,
              remote.bytes_out_per_s / 1e6, remote.bytes_in_per_s / 1e6 / c.jobs);
  for (const auto& [name, busy] : remote.busy) {
    std::printf("GPU group %s: %d GPUs, busy %.3f", name.c_str(), remote.group_gpus.at(name), busy);
    if (remote.front_end_busy.count(name) > 0) std::printf(", front end busy %.3f", remote.front_end_busy.at(name));
    std::printf("\n");
  }
  std::printf(
      "requests: %llu remote, %llu fallback, %llu open at the end, %llu late replies; events: %llu started, "
      "%llu finished, %llu open\n",
      (unsigned long long)remote.remote, (unsigned long long)remote.fallbacks, (unsigned long long)remote.requests_open,
      (unsigned long long)remote.late_replies, (unsigned long long)remote.events_started,
      (unsigned long long)remote.events_finished, (unsigned long long)remote.events_open);
  std::printf("cost: %llu simulated events in %.2f s CPU (with the GPUs), %.2f s (CPU-only)\n",
              (unsigned long long)remote.simulated_events, t1 - t0, t2 - t1);
  if (!json_path.empty()) {
    json j{{"conditions", conditions(o)},
           {"jobs", c.jobs},
           {"rtt_ms", rtt_ms},
           {"gain", gain},
           {"remote", result_json(remote)},
           {"cpu_only", result_json(local)}};
    write_file(json_path, j.dump(1) + "\n");
  }
  return remote.finished_twice == 0 ? 0 : 1;
}

int plan_command(common& o, double cores, double slowdown, int max_jobs, double site_gbit,
                 const std::string& csv_path) {
  load(o);
  sim::plan_config p;
  o.c.site_bytes_per_s = site_gbit * 1e9 / 8;
  p.base = o.c;
  p.cores = cores;
  p.slowdown = slowdown;
  p.max_jobs = max_jobs;
  const double t0 = cpu_seconds();
  const auto r = sim::make_plan(p);
  std::printf("offload-sim plan: %s\n", conditions(o).c_str());
  std::printf("campaign: %.0f cores = %d jobs of %d threads; CPU-only %.4f events/s per job\n", cores, r.jobs,
              o.c.threads, r.cpu_only_events_per_s_per_job);
  std::printf("a GPU saturates when its jobs run %.0f%% slower than with a GPU each (same draws)\n", 100 * slowdown);
  std::printf("%-10s %14s %14s %12s   %s\n", "model", "jobs_per_gpu", "cores_per_gpu", "gpus_needed",
              "saturates first (busy)");
  int total = 0;
  for (const auto& m : r.models) {
    std::printf("%-10s %14d %14.0f %12d   %s (%.2f)%s\n", m.model.c_str(), m.jobs_per_gpu, m.cores_per_gpu, m.gpus,
                m.limit.c_str(), m.limit_use, m.limit_reached ? "  (not saturated at --max-jobs)" : "");
    total += m.gpus;
  }
  std::printf("%-10s %14s %14s %12d\n", "all", "", "", total);
  std::printf("%-10s %10s %14s %8s %14s %16s\n", "distance", "rtt_ms", "events/s/job", "gain", "round_trip_p50",
              "into_site_GB/s");
  for (const auto& d : r.distances)
    std::printf("%-10s %10.3f %14.4f %8.4f %14.2f %16.3f\n", d.name.c_str(), 1e3 * d.rtt, d.events_per_s_per_job,
                d.gain, 1e3 * d.round_trip_p50, d.bytes_in_per_s / 1e9);
  std::printf("cost: %.2f s CPU\n", cpu_seconds() - t0);
  if (!csv_path.empty()) {
    std::string text =
        "model,jobs,cores,events_per_s_per_job,own_gpu_events_per_s_per_job,busy,round_trip_p50_ms,front_end_busy,"
        "site_link_use\n";
    char line[256];
    for (const auto& pt : r.sweep) {
      std::snprintf(line, sizeof line, "%s,%d,%d,%.6g,%.6g,%.4f,%.4f,%.4f,%.4f\n", pt.model.c_str(), pt.jobs,
                    pt.jobs * o.c.threads, pt.events_per_s_per_job, pt.own_gpu_events_per_s_per_job, pt.busy,
                    1e3 * pt.round_trip_p50, pt.front_end_busy, pt.site_link_use);
      text += line;
    }
    write_file(csv_path, text);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "offload-sim: a discrete-event model of client jobs, links and GPU servers, for planning (docs/planning.md); "
      "its figures are SIMULATED"};
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
  auto* run = app.add_subcommand(
      "run", "jobs against GPU servers: events/s per job with the GPUs and CPU-only, stages, GPU busy");
  common ro;
  double rtt_ms = 0, link_gbit = 0, site_gbit = 0, eager_kib = 64, timeout_ms = 0;
  std::vector<std::string> gpus;
  std::string routing = "round_robin", json_path;
  add_common(run, ro);
  run->add_option("--jobs", ro.c.jobs, "client jobs")->check(CLI::Range(1, 10000000));
  run->add_option("--rtt-ms", rtt_ms, "round trip between a job and the GPU site")->check(CLI::Range(0.0, 1e6));
  run->add_option("--link-gbit", link_gbit, "each job's link, Gbit/s each way; 0: unlimited")
      ->check(CLI::Range(0.0, 1e6));
  run->add_option("--site-link-gbit", site_gbit,
                  "the GPU site's link, shared by all jobs, Gbit/s each way; 0: unlimited")
      ->check(CLI::Range(0.0, 1e9));
  run->add_option("--eager-limit-kib", eager_kib,
                  "messages above it wait a round trip for the rendezvous (Open MPI TCP: 64); 0: none")
      ->check(CLI::Range(0.0, 1e9));
  run->add_option("--gpus", gpus, "MODEL=N: GPUs serving only that model (repeatable, or comma-separated)")
      ->delimiter(',');
  run->add_option("--shared-gpus", ro.c.shared_gpus, "GPUs serving every model not given to --gpus")
      ->check(CLI::Range(0, 1000000));
  run->add_option("--routing", routing, "how a job picks a GPU of a group")
      ->check(CLI::IsMember({"round_robin", "least_outstanding"}));
  run->add_option("--credits", ro.c.credits, "requests a job may have outstanding per GPU; 0: no limit")
      ->check(CLI::Range(0, 1 << 20));
  run->add_option("--timeout-ms", timeout_ms, "fall back to the job's CPU after this; 0: never")
      ->check(CLI::Range(0.0, 1e9));
  run->add_option("--json", json_path, "write the figures as JSON to this file");
  auto* plan = app.add_subcommand(
      "plan", "cores per GPU at which each model's GPU saturates, GPUs for a campaign, bandwidth, gain by distance");
  common po;
  double cores = 10000, slowdown = 0.01;
  int max_jobs = 4096;
  std::string csv_path;
  add_common(plan, po);
  plan->add_option("--cores", cores, "the campaign's client cores")->check(CLI::Range(1.0, 1e9));
  plan->add_option("--slowdown", slowdown, "a GPU is saturated when its jobs run this fraction slower")
      ->check(CLI::Range(1e-4, 0.99));
  plan->add_option("--max-jobs", max_jobs, "most jobs tried on one GPU")->check(CLI::Range(1, 1 << 20));
  double plan_site_gbit = 0;
  plan->add_option("--site-link-gbit", plan_site_gbit,
                   "the GPU site's link, shared by all jobs, Gbit/s each way; 0: unlimited")
      ->check(CLI::Range(0.0, 1e9));
  plan->add_option("--csv", csv_path, "write the saturation sweep's points to this CSV file (scripts/plan_plot.py)");
  CLI11_PARSE(app, argc, argv);

  try {
    if (*run) return run_command(ro, rtt_ms, link_gbit, site_gbit, eager_kib, gpus, routing, timeout_ms, json_path);
    if (*plan) return plan_command(po, cores, slowdown, max_jobs, plan_site_gbit, csv_path);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "offload-sim: %s\n", e.what());
    return 2;
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
