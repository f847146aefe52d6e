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
    modules.push_back(
        {{"name", m.name}, {"kernel", m.kernel}, {"size", m.size}, {"work", m.work}, {"cpu_ms", m.cpu_ms}});
    module_names += (module_names.empty() ? "" : "+") + m.name;
    if (kernel_names.find(m.kernel) == std::string::npos) kernel_names += (kernel_names.empty() ? "" : "+") + m.kernel;
  }
  const int world = int(ranks.size());
  report["config"] = {
      {"workload", w.name},
      {"mode", o.mode},
      {"time_scale", o.time_scale},
      {"cpu_before_ms", w.before_ms},
      {"cpu_after_ms", w.after_ms},
      {"cpu_before_iterations", w.before_iterations},
      {"cpu_after_iterations", w.after_iterations},
      {"ns_per_iteration", ns_per_iteration},
      {"modules", modules},
      {"ranks", world},
      {"receivers", o.receivers + o.remote_receivers},
      {"transmitters", world - o.receivers},
      {"service", o.connect ? (o.service_name.empty() ? o.port_file : o.service_name) : join(o.connect_to)},
      {"transport", o.transport},
      {"threads", o.threads},
      {"inflight", o.inflight},
      {"events_per_transmitter", o.events},
      {"warmup_events", o.warmup_events},
      {"seed", o.seed},
      {"credits", o.credits},
      {"timeout_ms", o.timeout_ms},
      {"idle_timeout_ms", o.idle_timeout_ms},
      {"max_message_bytes", o.max_message_bytes},
      {"max_products", o.max_products},
      {"max_name_length", o.max_name_length},
      {"backend", o.backend},
      {"receiver_threads", o.receiver_threads},
      {"routing", o.routing},
      {"blocking_receive_below", o.blocking_receive_below},
      {"max_batch", o.max_batch},
      {"max_wait_us", o.max_wait_us},
      {"validate", o.validate},
      {"wait_policy", o.wait_policy},
      {"spin_us", o.spin_us},
      {"yield_us", o.yield_us},
      {"idle_sleep_us", o.idle_sleep_us},
      {"bind", o.bind},
      {"network", o.emulated() ? "emulated" : "real"},
      {"distance", o.distance},
      {"inject_latency_ms", o.inject_latency_ms},
      {"inject_jitter_ms", o.inject_jitter_ms},
      {"inject_bandwidth_gbit", o.inject_bandwidth_gbit}};

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
  std::string backend = o.remote_receivers > 0 ? "service" : o.receivers == 0 ? "none" : "";
  for (std::size_t i = 0; i < ranks.size(); ++i) {
    auto& r = ranks[i];
    ok = ok && !r.value("setup_failed", false) && u64(r, "handshake_failures") == 0;
    for (auto& [k, v] : faults.items()) v = v.get<std::uint64_t>() + u64(r, k.c_str());
    if (r.at("role") == "receiver") {
      const double s = r.value("wall_s", 0.0);
      r["requests_per_s"] = ratio(double(u64(r, "requests")), s);
      r["mb_per_s"] = ratio(double(u64(r, "bytes_in") + u64(r, "bytes_out")) / 1e6, s);
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

  char digest_hex[17];
  std::snprintf(digest_hex, sizeof digest_hex, "%016llx", static_cast<unsigned long long>(digest));
  const json ev = stats_ms(all_events);
  json total{{"date", report["metadata"]["date"]},
             {"git_commit", build_info::git_commit},
             {"git_dirty", build_info::git_dirty},
             {"workload", w.name},
             {"mode", o.mode},
             {"transport", o.transport},
             {"modules", module_names},
             {"kernels", kernel_names},
             {"ranks", world},
             {"receivers", o.receivers + o.remote_receivers},
             {"transmitters", world - o.receivers},
             {"threads", o.threads},
             {"inflight", o.inflight},
             {"time_scale", o.time_scale},
             {"backend", backend},
             {"routing", o.routing},
             {"credits", o.credits},
             {"max_batch", o.max_batch},
             {"max_wait_us", o.max_wait_us},
             {"wait_policy", o.wait_policy},
             {"bind", o.bind},
             {"network", o.emulated() ? "emulated" : "real"},
             {"distance", o.distance},
             {"inject_latency_ms", o.inject_latency_ms},
             {"inject_jitter_ms", o.inject_jitter_ms},
             {"inject_bandwidth_gbit", o.inject_bandwidth_gbit},
             {"warmup_events", o.warmup_events},
             {"events", events},
             {"requests", submitted},
             {"wall_s", wall},
             {"events_per_s", ratio(double(events), wall)},
             {"requests_per_s", ratio(double(submitted), wall)},
             {"mb_per_s", ratio(double(bytes) / 1e6, wall)},
             {"event_mean_ms", ev["mean_ms"]},
             {"event_p50_ms", ev["p50_ms"]},
             {"event_p90_ms", ev["p90_ms"]},
             {"event_p99_ms", ev["p99_ms"]},
             {"remote", remote},
             {"fallbacks", fallbacks},
             {"errors", errors}};
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

}  // namespace offload::app
