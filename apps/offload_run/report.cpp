#include "report.hpp"

#include "build_info.hpp"

#ifdef OFFLOAD_WITH_CUDA
#include "kernels/cuda/cuda_kernels.hpp"
#endif

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>

extern char** environ;

namespace offload::app {
namespace {

std::string join(const std::vector<std::string>& parts) {
  std::string out;
  for (const auto& p : parts) out += (out.empty() ? "" : ",") + p;
  return out;
}

std::string utc_now() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

/// mean, p50, p90, p99 of `v` in ms (v in seconds).
json stats_ms(const std::vector<double>& v) {
  double sum = 0;
  for (double x : v) sum += x;
  return json{{"count", v.size()},
              {"mean_ms", v.empty() ? 0.0 : 1e3 * sum / double(v.size())},
              {"p50_ms", 1e3 * percentile(v, 0.5)},
              {"p90_ms", 1e3 * percentile(v, 0.9)},
              {"p99_ms", 1e3 * percentile(v, 0.99)}};
}

}  // namespace

double ratio(double a, double b) {
  return b > 0 ? a / b : 0.0;
}

std::uint64_t u64(const json& j, const char* key) {
  return j.contains(key) ? j.at(key).get<std::uint64_t>() : 0;
}

double percentile(std::vector<double> v, double q) {
  if (v.empty()) return 0.0;
  std::sort(v.begin(), v.end());
  const double pos = q * double(v.size() - 1);
  const auto lo = static_cast<std::size_t>(pos);
  const auto hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (v[hi] - v[lo]) * (pos - double(lo));
}

std::string device_label(const options& o) {
  if (o.backend != "emulated") return "real";
  char scale[32];
  std::snprintf(scale, sizeof scale, "%g", o.time_scale);
  return "EMULATED (" + o.profile_data.device + ", " + o.profile_data.path + ", times x " + scale + ")";
}

json job_metadata(const options& o, const std::string& mpi_library) {
  json env = json::object();
  for (char** e = environ; e && *e; ++e) {
    const std::string kv(*e);
    if (kv.rfind("OMPI_", 0) != 0 && kv.rfind("UCX_", 0) != 0) continue;
    const auto eq = kv.find('=');
    env[kv.substr(0, eq)] = eq == std::string::npos ? "" : kv.substr(eq + 1);
  }
  return json{{"argv", o.argv},
              {"date", utc_now()},
              {"git_commit", build_info::git_commit},
              {"git_dirty", build_info::git_dirty},
              {"compiler", build_info::compiler},
              {"build_type", build_info::build_type},
              {"cuda_compiler", build_info::cuda_compiler},
#ifdef OFFLOAD_WITH_CUDA
              {"cuda", kernels::cuda::versions()},
#else
              {"cuda", "none (built without CUDA)"},
#endif
              {"mpi_library", mpi_library},
              {"environment", env}};
}

json make_report(const options& o, const workload& w, double ns_per_iteration, json metadata, json ranks,
                 const std::vector<std::vector<double>>& event_times,
                 const std::vector<std::vector<request_record>>& requests) {
  json report;
  // Hosts: one topology summary each, taken out of the rank entries.
  json hosts = json::object();
  for (auto& r : ranks) {
    hosts[r.at("host").get<std::string>()] = r.at("topology");
    r.erase("topology");
  }
  metadata["hosts"] = hosts;
  json cuda = json::array();
  for (const auto& r : ranks)
    if (r.value("backend", "") == "cuda")
      cuda.push_back({{"rank", r.at("rank")}, {"device", r.at("backend_description")}});
  metadata["cuda_devices"] = cuda;
  report["metadata"] = metadata;

  json modules = json::array();
  std::string module_names, kernel_names;
  for (const auto& m : w.modules) {
    json mj{{"name", m.name}, {"kernel", m.kernel}, {"size", m.size}, {"work", m.work}, {"cpu_ms", m.cpu_ms}};
    if (m.model)
      mj.update({{"model", m.kernel},
                 {"features_per_item", m.features},
                 {"outputs_per_item", m.outputs},
                 {"items_mean", m.items_mean},
                 {"items_distribution", m.items_poisson ? "poisson" : "fixed"},
                 {"input_mb", m.input_mb},
                 {"source", m.source}});
    modules.push_back(mj);
    module_names += (module_names.empty() ? "" : "+") + m.name;
    if (kernel_names.find(m.kernel) == std::string::npos) kernel_names += (kernel_names.empty() ? "" : "+") + m.kernel;
  }
  const int world = int(ranks.size());
  const std::string device = device_label(o);
  // The settings as the report echoes them: a flag's from its row (apps/common/options.hpp),
  // the rest derived here; the JSON config and the summary row (CSV) walk their names in order.
  const json derived{
      {"workload", w.name},
      {"workload_file", w.path},
      {"device", device},
      {"cpu_before_ms", w.before_ms},
      {"cpu_after_ms", w.after_ms},
      {"cpu_cv", w.cpu_cv},
      {"cpu_before_iterations", w.before_iterations},
      {"cpu_after_iterations", w.after_iterations},
      {"ns_per_iteration", ns_per_iteration},
      {"modules", modules},
      {"ranks", world},
      {"transmitters", world - o.receivers},
      {"service", o.connect ? (o.service_name.empty() ? o.port_file : o.service_name) : join(o.connect_to)},
      {"network", o.emulated() ? "emulated" : "real"}};
  const auto echo = [&](json& out, const std::vector<std::string_view>& names, const json& here) {
    for (const auto name : names) {
      const std::string key(name);
      out[key] = here.contains(key) ? here.at(key) : report_value(o, name);
    }
  };
  // Binding and the emulated distance: in this order in both the config and the summary row.
  const std::vector<std::string_view> placement{
      "bind",          "network", "distance", "inject_latency_ms", "inject_jitter_ms", "inject_bandwidth_gbit",
      "site_link_gbit"};
  json config = json::object();
  echo(config,
       {"workload",
        "workload_file",
        "device",
        "profile",
        "cpu_work",
        "fallback_threads",
        "preferred_batch",
        "mode",
        "time_scale",
        "cpu_before_ms",
        "cpu_after_ms",
        "cpu_cv",
        "cpu_before_iterations",
        "cpu_after_iterations",
        "ns_per_iteration",
        "modules",
        "ranks",
        "receivers",
        "transmitters",
        "service",
        "transport",
        "threads",
        "inflight",
        "events_per_transmitter",
        "warmup_events",
        "seed",
        "credits",
        "timeout_ms",
        "idle_timeout_ms",
        "max_message_bytes",
        "max_products",
        "max_name_length",
        "backend",
        "receiver_threads",
        "routing",
        "blocking_receive_below",
        "parts_from",
        "copy_inputs",
        "same_inputs",
        "fresh_malloc",
        "inline_budget_us",
        "max_batch",
        "max_wait_us",
        "max_queue",
        "max_threads",
        "kernel_instances",
        "kernel_priority",
        "kernel_max_queue",
        "priority",
        "deadlines",
        "validate",
        "wait_policy",
        "spin_us",
        "yield_us",
        "idle_sleep_us"},
       derived);
  echo(config, placement, derived);
  report["config"] = config;

  // Per rank figures, and the totals.
  std::vector<double> all_events;
  std::vector<std::vector<double>> stage_values(6);
  std::vector<std::vector<double>> module_latency(w.modules.size());
  std::vector<std::array<std::uint64_t, 3>> module_kinds(w.modules.size());
  double wall = 0;
  std::uint64_t events = 0, submitted = 0, remote = 0, fallbacks = 0, errors = 0, bytes = 0, not_adding_up = 0,
                digest = 0;
  // Faults and what absorbed them, summed over the ranks that count each.
  json faults = json::object();
  for (const auto& c : transmitter_stats::counters())
    if (c.fault) faults[c.name] = 0;
  for (const auto& c : receiver_stats::counters())
    if (c.fault) faults[c.name] = 0;
  bool ok = true;
  double busy = 0, queued = 0, receiver_wall = 0, wait_fraction = 0, steady = 0;
  std::uint64_t batches = 0, batch_requests = 0, batch_items = 0;
  int transmitters_seen = 0;
  std::string backend = o.remote_receivers > 0 ? "service" : o.receivers == 0 ? "none" : "";
  for (std::size_t i = 0; i < ranks.size(); ++i) {
    auto& r = ranks[i];
    // (A kernel that broke its output specs is a defect, whatever the fallback made of it.)
    ok = ok && !r.value("setup_failed", false) && u64(r, "handshake_failures") == 0 && u64(r, "bad_outputs") == 0;
    for (auto& [k, v] : faults.items()) v = v.get<std::uint64_t>() + u64(r, k.c_str());
    if (r.at("role") == "receiver") {
      const double s = r.value("wall_s", 0.0);
      r["requests_per_s"] = ratio(double(u64(r, "requests")), s);
      r["mb_per_s"] = ratio(double(u64(r, "bytes_in") + u64(r, "bytes_out")) / 1e6, s);
      std::uint64_t rank_batches = 0, rank_requests = 0;
      const json sizes = r.contains("batch_sizes") ? r.at("batch_sizes") : json::object();
      for (const auto& [n, count] : sizes.items()) {
        rank_batches += count.get<std::uint64_t>();
        rank_requests += std::stoull(n) * count.get<std::uint64_t>();
      }
      r["busy_fraction"] = ratio(r.value("busy_s", 0.0), s);
      r["mean_queue_requests"] = ratio(r.value("queued_request_s", 0.0), s);
      r["mean_batch_requests"] = ratio(double(rank_requests), double(rank_batches));
      r["mean_batch_items"] = ratio(double(u64(r, "batch_items")), double(rank_batches));
      busy += r.value("busy_s", 0.0);
      queued += r.value("queued_request_s", 0.0);
      receiver_wall += s;
      batches += rank_batches;
      batch_requests += rank_requests;
      batch_items += u64(r, "batch_items");
      const std::string b = r.value("backend", "");
      if (backend.find(b) == std::string::npos) backend += (backend.empty() ? "" : "+") + b;
      continue;
    }
    const auto& times = event_times[i];
    const double s = r.value("wall_s", 0.0);
    const std::uint64_t errs = u64(r, "failed") + u64(r, "mismatches") + (r.value("setup_failed", false) ? 1 : 0);
    const std::uint64_t rank_bytes = u64(r, "bytes_in") + u64(r, "bytes_out");
    r["events_per_s"] = ratio(double(u64(r, "events")), s);
    r["requests_per_s"] = ratio(double(u64(r, "submitted")), s);
    r["mb_per_s"] = ratio(double(rank_bytes) / 1e6, s);
    r["event_time"] = stats_ms(times);
    r["errors"] = errs;
    wait_fraction += r.value("remote_wait", json::object()).value("mean_fraction", 0.0);
    steady += r.value("steady_events_per_s", 0.0);
    ++transmitters_seen;
    ok = ok && errs == 0;
    wall = std::max(wall, s);
    events += u64(r, "events");
    submitted += u64(r, "submitted");
    remote += u64(r, "remote");
    fallbacks += u64(r, "fallbacks");
    errors += errs;
    bytes += rank_bytes;
    not_adding_up += u64(r, "stages_not_adding_up");
    digest += std::stoull(r.value("digest", "0"), nullptr, 16);
    all_events.insert(all_events.end(), times.begin(), times.end());
    for (const auto& q : requests[i]) {
      if (q.module < 0 || std::size_t(q.module) >= w.modules.size()) continue;
      module_latency[std::size_t(q.module)].push_back(q.latency);
      ++module_kinds[std::size_t(q.module)][std::size_t(q.kind)];
      if (q.kind != request_kind::remote) continue;
      double sum = 0;
      for (std::size_t s2 = 0; s2 < 5; ++s2) {
        stage_values[s2].push_back(q.stages[s2]);
        sum += q.stages[s2];
      }
      stage_values[5].push_back(sum);
    }
  }
  report["ranks"] = ranks;

  json module_stats = json::array();
  for (std::size_t m = 0; m < w.modules.size(); ++m) {
    json s = stats_ms(module_latency[m]);
    module_stats.push_back({{"name", w.modules[m].name},
                            {"kernel", w.modules[m].kernel},
                            {"remote", module_kinds[m][0]},
                            {"fallback", module_kinds[m][1]},
                            {"inline", module_kinds[m][2]},
                            {"latency", s}});
  }
  report["modules"] = module_stats;
  json stages = json::object();
  for (std::size_t s = 0; s < 6; ++s) stages[stage_keys[s]] = stats_ms(stage_values[s]);
  stages["not_adding_up"] = not_adding_up;
  report["stages"] = stages;

  // Credits: a transmitter may have credits x receivers requests outstanding, and wants up to
  // events in flight x requests per event; when that is short and its requests waited for a
  // credit a good part of their round trip, the credits bound the run.
  const int rx = o.receivers + o.remote_receivers;
  const std::uint64_t wanted = std::uint64_t(o.inflight) * w.modules.size();
  const std::uint64_t allowed = std::uint64_t(o.credits) * std::uint64_t(std::max(rx, 1));
  const double queue_p50 = stages["tx_queue"]["p50_ms"].get<double>();
  const double trip_p50 = stages["round_trip"]["p50_ms"].get<double>();
  const bool credit_bound = rx > 0 && allowed < wanted && queue_p50 > 0.1 * trip_p50;
  report["credits"] = {
      {"credits", o.credits},
      {"given", o.credits_given},
      {"outstanding_allowed", allowed},
      {"outstanding_wanted", wanted},
      {"bound", credit_bound},
      {"transmitter_queue_p50_ms", queue_p50},
      {"round_trip_p50_ms", trip_p50},
      {"advice", credit_bound
                     ? "set --credits " + std::to_string((wanted + std::uint64_t(rx) - 1) / std::uint64_t(rx)) +
                           " or more (receivers must allow it)"
                     : ""}};

  char digest_hex[17];
  std::snprintf(digest_hex, sizeof digest_hex, "%016llx", static_cast<unsigned long long>(digest));
  const json ev = stats_ms(all_events);
  json here = derived;  // the summary's own: module and kernel names, the receivers' backend
  here.update(json{{"date", report["metadata"]["date"]},
                   {"git_commit", build_info::git_commit},
                   {"git_dirty", build_info::git_dirty},
                   {"modules", module_names},
                   {"kernels", kernel_names},
                   {"backend", backend}});
  json total = json::object();
  echo(total, {"date",     "git_commit", "git_dirty",    "workload",  "mode",        "transport",  "modules", "kernels",
               "ranks",    "receivers",  "transmitters", "threads",   "inflight",    "time_scale", "backend", "device",
               "cpu_work", "routing",    "credits",      "max_batch", "max_wait_us", "wait_policy"},
       here);
  echo(total, placement, here);
  echo(total, {"warmup_events"}, here);
  total.update(json{{"events", events},
                    {"requests", submitted},
                    {"wall_s", wall},
                    {"events_per_s", ratio(double(events), wall)},
                    {"steady_events_per_s", steady},
                    {"requests_per_s", ratio(double(submitted), wall)},
                    {"mb_per_s", ratio(double(bytes) / 1e6, wall)},
                    {"event_mean_ms", ev["mean_ms"]},
                    {"event_p50_ms", ev["p50_ms"]},
                    {"event_p90_ms", ev["p90_ms"]},
                    {"event_p99_ms", ev["p99_ms"]},
                    {"remote", remote},
                    {"fallbacks", fallbacks},
                    {"errors", errors},
                    {"device_busy_fraction", ratio(busy, receiver_wall)},
                    {"mean_queue_requests", ratio(queued, receiver_wall)},
                    {"mean_batch_requests", ratio(double(batch_requests), double(batches))},
                    {"mean_batch_items", ratio(double(batch_items), double(batches))},
                    {"remote_wait_fraction", ratio(wait_fraction, double(transmitters_seen))},
                    {"credits_bound", credit_bound}});
  for (std::size_t s = 0; s < 6; ++s)
    for (const char* q : {"mean_ms", "p50_ms", "p90_ms", "p99_ms"})
      total[std::string(stage_keys[s]) + "_" + q] = stages[stage_keys[s]][q];
  total["stages_not_adding_up"] = not_adding_up;
  for (const auto& [k, v] : faults.items()) total["faults_" + k] = v;  // flat: the CSV has one column each
  total["digest"] = digest_hex;
  total["status"] = ok ? "ok" : "failed";
  report["total"] = total;
  return report;
}

std::string calibration_file_text(const options& o, const workload& w, const json& report,
                                  const std::vector<std::vector<request_record>>& requests) {
  // Progress-thread CPU, each side (per request, and as cores over the run); request and reply
  // bytes for modules that are not models (a model module's come from its items and features).
  double tx_cpu = 0, rx_cpu = 0, tx_requests = 0, rx_requests = 0, bytes_out = 0, bytes_in = 0, tx_wall = 0,
         rx_wall = 0;
  for (const auto& r : report.at("ranks")) {
    const double cpu = r.at("cpu").value("progress_thread_s", 0.0);
    if (r.at("role") == "receiver") {
      rx_cpu += cpu;
      rx_wall += r.value("wall_s", 0.0);
      rx_requests += double(u64(r, "requests"));
    } else {
      tx_cpu += cpu;
      tx_wall += r.value("wall_s", 0.0);
      tx_requests += double(u64(r, "submitted"));
      bytes_out += double(u64(r, "bytes_out"));
      bytes_in += double(u64(r, "bytes_in"));
    }
  }
  auto device = o.profile_data;  // the emulated device's times, scaled as the receiver scaled them
  device.time_scale = o.time_scale;
  std::vector<calibration_point> points;
  for (std::size_t m = 0; m < w.modules.size(); ++m) {
    const auto& spec = w.modules[m];
    std::vector<double> stage[4];
    for (const auto& rank : requests)
      for (const auto& q : rank)
        if (q.module == int(m) && q.kind == request_kind::remote) {
          stage[0].push_back(q.stages[0]);
          stage[1].push_back(q.stages[1]);
          stage[2].push_back(q.stages[4]);
          stage[3].push_back(q.stages[3]);
        }
    if (stage[0].empty()) continue;
    calibration_point p;
    p.module = spec.name;
    p.requests = double(stage[0].size());
    p.bytes_in = spec.model ? spec.items_mean * spec.features * 4.0 : ratio(bytes_out, tx_requests);
    p.bytes_out = spec.model ? spec.items_mean * spec.outputs * 4.0 : ratio(bytes_in, tx_requests);
    p.tx_queue_s = percentile(stage[0], 0.5);
    p.net_out_s = percentile(stage[1], 0.5);
    p.net_back_s = percentile(stage[2], 0.5);
    p.kernel_s = percentile(stage[3], 0.5);
    if (o.backend == "emulated" && spec.model)
      if (const auto* t = device.find(spec.kernel))
        p.device_s = device.batch_seconds(*t, spec.items_mean, p.bytes_in, p.bytes_out);
    points.push_back(p);
  }
  if (points.empty() || tx_requests <= 0)
    throw std::invalid_argument("--calibrate: the run had no remote request to measure the library's costs from");
  std::string argv;
  for (const auto& a : o.argv) argv += (argv.empty() ? "" : " ") + a;
  const std::string source =
      argv + "; " + report.at("total").value("date", std::string()) + ", commit " + build_info::git_commit +
      (build_info::git_dirty ? " (dirty)" : "") + ", host " + report.at("ranks").at(0).value("host", std::string("?")) +
      ", " + report.at("total").value("transport", "") + ", " + report.at("total").value("distance", "") + ", " +
      "transmitter ranks " + std::to_string(int(report.at("total").value("transmitters", 0)));
  const auto costs = fit_costs(points, 1e-3 * o.inject_latency_ms, ratio(tx_cpu, tx_wall), source);
  return calibration_json(costs, points,
                          {{"tx_progress_cpu_us_per_request", 1e6 * ratio(tx_cpu, tx_requests)},
                           {"rx_progress_cpu_us_per_request", 1e6 * ratio(rx_cpu, rx_requests)},
                           {"rx_progress_cores", ratio(rx_cpu, rx_wall)}});
}

}  // namespace offload::app
