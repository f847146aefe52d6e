#include "report_output.hpp"

#include <cstdio>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace offload::app {
namespace {

std::string csv_cell(const json& v) {
  std::string s = v.is_string() ? v.get<std::string>() : v.dump();
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string q = "\"";
  for (char c : s) q += c == '"' ? std::string("\"\"") : std::string(1, c);
  return q + "\"";
}

}  // namespace

std::string human_summary(const json& rep) {
  const auto& c = rep.at("config");
  const auto& t = rep.at("total");
  std::ostringstream os;
  char line[512];
  os << "offload-run: workload " << c["workload"].get<std::string>() << " (" << t["modules"].get<std::string>()
     << "), mode " << c["mode"].get<std::string>() << " over " << c["transport"].get<std::string>() << ", time scale "
     << c["time_scale"].get<double>() << ", " << c["receivers"].get<int>() << " receiver(s), "
     << c["transmitters"].get<int>() << " transmitter(s) x " << c["threads"].get<int>() << " threads, "
     << c["inflight"].get<int>() << " in flight, credits " << c["credits"].get<int>() << ", backend "
     << c["backend"].get<std::string>() << ", batch " << c["max_batch"].get<int>() << "/"
     << c["max_wait_us"].get<double>() << " us, wait " << c["wait_policy"].get<std::string>() << ", validate "
     << (c["validate"].get<bool>() ? "on" : "off") << "\n";
  if (c["network"] == "emulated")
    os << "network: EMULATED (" << c["distance"].get<std::string>() << "): one-way delay "
       << c["inject_latency_ms"].get<double>() << " ms +- " << c["inject_jitter_ms"].get<double>() << " ms, bandwidth "
       << (c["inject_bandwidth_gbit"].get<double>() > 0
               ? std::to_string(c["inject_bandwidth_gbit"].get<double>()) + " Gbit/s"
               : std::string("unlimited"))
       << ", added in mpi-offload's transport on every rank"
       << (c["site_link_gbit"].get<double>() > 0 ? "; a shared site link into each receiver of " +
                                                       std::to_string(c["site_link_gbit"].get<double>()) + " Gbit/s"
                                                 : std::string())
       << "\n";
  if (c["device"] != "real")
    os << "device: " << c["device"].get<std::string>()
       << ": each batch waits its profiled time on a receiver thread (docs/emulated-device.md)\n";
  if (c["cpu_work"] != "real")
    os << "cpu work: " << c["cpu_work"].get<std::string>()
       << ": client CPU work and CPU runs of models hold their thread for their time without computing\n";
  std::snprintf(line, sizeof line, "%6s %-12s %8s %9s %10s %10s %8s %9s %9s %9s %8s %9s %7s\n", "rank", "role",
                "events", "wall_s", "events/s", "req/s", "MB/s", "p50_ms", "p90_ms", "p99_ms", "remote", "fallbacks",
                "errors");
  os << line;
  auto row = [&](const std::string& rank, const std::string& role, std::uint64_t events, double wall, double eps,
                 double rps, double mbps, const json& et, std::uint64_t remote, std::uint64_t fb, std::uint64_t err) {
    std::snprintf(line, sizeof line, "%6s %-12s %8llu %9.3f %10.1f %10.1f %8.1f %9.3f %9.3f %9.3f %8llu %9llu %7llu\n",
                  rank.c_str(), role.c_str(), (unsigned long long)events, wall, eps, rps, mbps, et.value("p50_ms", 0.0),
                  et.value("p90_ms", 0.0), et.value("p99_ms", 0.0), (unsigned long long)remote, (unsigned long long)fb,
                  (unsigned long long)err);
    os << line;
  };
  for (const auto& r : rep.at("ranks")) {
    if (r["role"] != "transmitter") continue;
    row(std::to_string(r["rank"].get<int>()), "transmitter", u64(r, "events"), r.value("wall_s", 0.0),
        r.value("events_per_s", 0.0), r.value("requests_per_s", 0.0), r.value("mb_per_s", 0.0),
        r.value("event_time", json::object()), u64(r, "remote"), u64(r, "fallbacks"), u64(r, "errors"));
  }
  row("all", "", u64(t, "events"), t["wall_s"].get<double>(), t["events_per_s"].get<double>(),
      t["requests_per_s"].get<double>(), t["mb_per_s"].get<double>(),
      json{{"p50_ms", t["event_p50_ms"]}, {"p90_ms", t["event_p90_ms"]}, {"p99_ms", t["event_p99_ms"]}},
      u64(t, "remote"), u64(t, "fallbacks"), u64(t, "errors"));
  os << "(p50/p90/p99: event time, from the start of an event to the end of its produce step)\n";
  if (c["mode"] == "remote") {
    std::snprintf(line, sizeof line,
                  "waiting on remote results: %.1f%% of an event's time (mean over events; from its last submit to "
                  "its last result)\n",
                  100.0 * t.value("remote_wait_fraction", 0.0));
    os << line;
  }
  if (const auto& cr = rep.at("credits"); cr.value("bound", false)) {
    std::snprintf(line, sizeof line,
                  "CREDITS BOUND THIS RUN: a transmitter may have %llu requests outstanding (credits %llu x "
                  "receivers) but wants up to %llu (events in flight x requests per event); its requests waited "
                  "p50 %.3f ms for a credit, of a %.3f ms round trip: %s\n",
                  (unsigned long long)u64(cr, "outstanding_allowed"), (unsigned long long)u64(cr, "credits"),
                  (unsigned long long)u64(cr, "outstanding_wanted"), cr["transmitter_queue_p50_ms"].get<double>(),
                  cr["round_trip_p50_ms"].get<double>(), cr["advice"].get<std::string>().c_str());
    os << line;
  }

  for (const auto& r : rep.at("ranks")) {
    if (r["role"] != "receiver") continue;
    const int rank = r["rank"].get<int>();
    // Every counter of receiver_stats, as the JSON has it, then the rates.
    os << "receiver rank " << rank << " (" << r.value("backend", "") << "):";
    const char* sep = " ";
    for (const auto& counter : receiver_stats::counters()) {
      os << sep << counter.name << " " << u64(r, counter.name);
      sep = ", ";
    }
    std::snprintf(line, sizeof line, ", %.1f req/s, %.1f MB/s\n", r.value("requests_per_s", 0.0),
                  r.value("mb_per_s", 0.0));
    os << line;
    if (r.value("backend", "") == "cuda")
      os << "receiver rank " << rank << ": " << r.value("backend_description", "") << "\n";
    std::snprintf(line, sizeof line,
                  "receiver rank %d: busy %.1f%% of the time (>= 1 batch running), mean queue %.2f requests, mean "
                  "batch %.2f requests / %.2f items\n",
                  rank, 100.0 * r.value("busy_fraction", 0.0), r.value("mean_queue_requests", 0.0),
                  r.value("mean_batch_requests", 0.0), r.value("mean_batch_items", 0.0));
    os << line;
    if (c["max_batch"].get<int>() != 1) {
      std::uint64_t batches = 0, requests = 0;
      std::string hist;
      for (const auto& [n, count] : r.at("batch_sizes").items()) {
        batches += count.get<std::uint64_t>();
        requests += std::stoull(n) * count.get<std::uint64_t>();
        hist += " " + n + ":" + std::to_string(count.get<std::uint64_t>());
      }
      std::snprintf(line, sizeof line, "receiver rank %d: %llu batches, mean size %.2f; size:count%s\n", rank,
                    (unsigned long long)batches, ratio(double(requests), double(batches)), hist.c_str());
      os << line;
    }
  }

  const auto& st = rep.at("stages");
  if (st["round_trip"]["count"].get<std::uint64_t>() > 0) {
    std::snprintf(line, sizeof line, "stages of %llu remote requests (ms):\n%-18s %9s %9s %9s %9s\n",
                  (unsigned long long)st["round_trip"]["count"].get<std::uint64_t>(), "stage", "mean", "p50", "p90",
                  "p99");
    os << line;
    for (std::size_t s = 0; s < 6; ++s) {
      const auto& v = st[stage_keys[s]];
      std::snprintf(line, sizeof line, "%-18s %9.3f %9.3f %9.3f %9.3f\n", stage_names[s], v["mean_ms"].get<double>(),
                    v["p50_ms"].get<double>(), v["p90_ms"].get<double>(), v["p99_ms"].get<double>());
      os << line;
    }
    os << "(stages not adding up to their round trip, or past the measured latency: "
       << st["not_adding_up"].get<std::uint64_t>() << ")\n";
  }
  const auto& mods = rep.at("modules");
  if (mods.size() > 1 || c["mode"] == "local") {
    std::snprintf(line, sizeof line, "%-12s %-10s %8s %8s %8s %9s %9s %9s\n", "module", "kernel", "remote", "fallback",
                  "inline", "mean_ms", "p50_ms", "p99_ms");
    os << line;
    for (const auto& m : mods) {
      std::snprintf(line, sizeof line, "%-12s %-10s %8llu %8llu %8llu %9.3f %9.3f %9.3f\n",
                    m["name"].get<std::string>().c_str(), m["kernel"].get<std::string>().c_str(),
                    (unsigned long long)u64(m, "remote"), (unsigned long long)u64(m, "fallback"),
                    (unsigned long long)u64(m, "inline"), m["latency"]["mean_ms"].get<double>(),
                    m["latency"]["p50_ms"].get<double>(), m["latency"]["p99_ms"].get<double>());
      os << line;
    }
    os << "(module times: submit to result when remote or fallback, the kernel alone when inline)\n";
  }
  std::string fault_line;
  for (const auto& [k, v] : t.items())
    if (k.rfind("faults_", 0) == 0 && v.get<std::uint64_t>() > 0)
      fault_line += (fault_line.empty() ? "" : ", ") + k.substr(7) + " " + std::to_string(v.get<std::uint64_t>());
  if (!fault_line.empty()) os << "faults: " << fault_line << "\n";
  for (const auto& r : rep.at("ranks")) {
    // Over the rank's measured window (wall_s); a window of a few ms gives no meaningful share.
    const auto& cpu = r.at("cpu");
    const double wall = r.value("wall_s", 0.0), progress = cpu["progress_thread_s"].get<double>();
    char share[64];
    if (wall >= 0.05)
      std::snprintf(share, sizeof share, "%.1f%% of a core", 100.0 * progress / wall);
    else
      std::snprintf(share, sizeof share, "in a window of %.1f ms", 1e3 * wall);
    std::snprintf(line, sizeof line,
                  "cpu rank %d (%s): progress thread %.3f s (%s), process %.3f s, %llu minor faults\n",
                  r["rank"].get<int>(), r["role"].get<std::string>().c_str(), progress, share,
                  cpu["process_s"].get<double>(), (unsigned long long)cpu.value("minor_faults", std::uint64_t{0}));
    os << line;
    const auto& mem = r.at("memory");
    std::snprintf(line, sizeof line, "memory rank %d (%s): RSS %.1f MiB at start, %.1f MiB at most, %.1f MiB at end\n",
                  r["rank"].get<int>(), r["role"].get<std::string>().c_str(), double(u64(mem, "rss_start_kib")) / 1024,
                  double(u64(mem, "rss_max_kib")) / 1024, double(u64(mem, "rss_end_kib")) / 1024);
    os << line;
    if (c["bind"].get<bool>()) {
      const auto& b = r.at("binding");
      os << "binding rank " << r["rank"].get<int>() << " (" << r["role"].get<std::string>() << ", "
         << r["host"].get<std::string>() << "): process PUs " << b["process"].get<std::string>()
         << ", progress thread PUs " << b["progress_thread"].get<std::string>();
      if (b.contains("workers")) {
        os << ", workers PUs";
        for (const auto& wk : b["workers"]) os << " " << wk.get<std::string>();
      }
      os << "\n";
    }
  }
  os << "digest: " << t["digest"].get<std::string>() << "\n";
  return os.str();
}

void append_csv(const std::string& path, const json& rep) {
  const auto& t = rep.at("total");
  std::string header, row;
  for (const auto& [k, v] : t.items()) {
    header += (header.empty() ? "" : ",") + k;
    row += (row.empty() ? "" : ",") + csv_cell(v);
  }
  std::string existing;
  {
    std::ifstream in(path);
    if (in) std::getline(in, existing);
  }
  if (!existing.empty() && existing != header)
    throw std::runtime_error("--csv " + path + ": its header differs from this run's columns (an older version or " +
                             "another table); write to a new file");
  std::ofstream out(path, std::ios::app);
  if (!out) throw std::runtime_error("cannot write --csv file '" + path + "'");
  if (existing.empty()) out << header << "\n";
  out << row << "\n";
  if (!out.flush()) throw std::runtime_error("writing --csv file '" + path + "' failed");
}

void write_json(const std::string& path, const json& rep) {
  std::ofstream out(path);
  if (!out) throw std::runtime_error("cannot write --json file '" + path + "'");
  out << rep.dump(2) << "\n";
  if (!out.flush()) throw std::runtime_error("writing --json file '" + path + "' failed");
}

}  // namespace offload::app
