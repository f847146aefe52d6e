// offload-run: the event-loop driver. Ranks below --receivers serve; the others run an event
// loop of --threads worker threads keeping --inflight events in flight, each event submitting
// one request of --kernel. Rank 0 prints one summary table (and writes --json).
#include <offload/receiver.hpp>
#include <offload/runtime.hpp>
#include <offload/transmitter.hpp>

#include <CLI/CLI.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>

namespace {

struct options {
  int receivers = 1;
  std::string kernel = "mlp";
  std::uint64_t events = 1000;
  int threads = 2;
  int inflight = 4;
  bool validate = false;
  double timeout_ms = 30000;
  std::string json;
  std::uint64_t size = 0;  // 0: the kernel's default
  std::uint64_t work = 1000;
  std::uint64_t seed = 12345;
  std::uint32_t credits = 8;
  std::size_t receiver_threads = 1;
  std::string routing = "round_robin";
  std::string backend = "auto";
  std::vector<std::string> kernel_set;
  std::uint64_t max_message_bytes = std::uint64_t{1} << 30;
  double tolerance = 1e-5;
  std::string log_level = "warn";
  int idle_sleep_us = 200;
  int spin_us = 50;
  int yield_us = 2000;
  int device = -1;
  std::uint32_t max_batch = 1;
  double max_wait_us = 0;
};

constexpr std::size_t max_batch_limit = 64;

std::uint64_t default_size(const std::string& kernel) {
  if (kernel == "mlp") return 256;          // jets per event
  if (kernel == "clustering") return 64;    // 64 x 64 cells
  if (kernel == "synthetic") return 4096;   // elements
  return 65536;                             // echo: bytes
}

/// Deterministic per-event seed from (seed, rank, event index).
std::uint64_t event_seed(std::uint64_t seed, int rank, std::uint64_t index) {
  std::uint64_t x = seed ^ (std::uint64_t(rank) << 40) ^ index;
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdull;
  x ^= x >> 33;
  return x;
}

/// What each rank reports to rank 0 (sent as bytes: every rank runs the same binary).
struct rank_record {
  std::int32_t rank = 0;
  std::int32_t is_receiver = 0;
  std::int32_t setup_failed = 0;  // the handshake was refused
  std::int32_t pad = 0;
  double wall_s = 0;
  std::uint64_t events = 0, remote = 0, fallbacks = 0, fallback_timeout = 0, fallback_error = 0,
                fallback_no_receiver = 0, failed = 0, mismatches = 0, late = 0;
  std::uint64_t requests = 0, replies = 0, error_replies = 0, malformed = 0, handshake_failures = 0;
  std::uint64_t bytes_in = 0, bytes_out = 0;
  std::uint64_t batch_sizes[max_batch_limit + 1] = {};  // receivers: [n] batches of n requests
  char backend[8] = {};                                 // receivers: the backend in use
  char backend_description[192] = {};                   // receivers: e.g. the CUDA device report
  std::uint64_t stages_not_adding_up = 0;               // transmitters: see event_loop::stages
};

double percentile(std::vector<double> v, double q) {
  if (v.empty()) return 0.0;
  std::sort(v.begin(), v.end());
  const double pos = q * double(v.size() - 1);
  const auto lo = static_cast<std::size_t>(pos);
  const auto hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (v[hi] - v[lo]) * (pos - double(lo));
}

/// The event loop of one transmitter rank: `threads` workers, at most `inflight` events
/// submitted and not yet produced. acquire (make inputs, submit) and produce (validate,
/// record) run on the workers; the result callback only queues the produce step.
class event_loop {
 public:
  event_loop(offload::transmitter& tx, const offload::kernel& k, const options& o, int rank)
      : m_tx(tx), m_kernel(k), m_opt(o), m_rank(rank), m_latency(o.events, 0.0), m_stages(o.events),
        m_remote(o.events, 0) {}

  void run() {
    for (std::uint64_t i = 0; i < std::min<std::uint64_t>(std::uint64_t(m_opt.inflight), m_opt.events); ++i)
      push([this] { acquire(); });
    std::vector<std::thread> workers;
    for (int t = 0; t < m_opt.threads; ++t) workers.emplace_back([this] { work(); });
    for (auto& w : workers) w.join();
  }

  const std::vector<double>& latencies() const { return m_latency; }
  /// The five stage durations of every remote result, flattened; and how many results'
  /// stages did not add up to their round trip (there should be none).
  std::vector<double> stages(std::uint64_t& not_adding_up) const {
    std::vector<double> flat;
    not_adding_up = 0;
    for (std::size_t i = 0; i < m_stages.size(); ++i) {
      if (!m_remote[i]) continue;
      double sum = 0;
      for (double v : m_stages[i]) sum += v;
      if (std::abs(sum - m_round_trip_check[i]) > 1e-9) ++not_adding_up;
      flat.insert(flat.end(), m_stages[i].begin(), m_stages[i].end());
    }
    return flat;
  }
  std::uint64_t mismatches() const { return m_mismatches; }
  std::uint64_t failed() const { return m_failed; }

 private:
  offload::input_params params(std::uint64_t i) const {
    return {event_seed(m_opt.seed, m_rank, i), m_opt.size, m_opt.work};
  }

  void push(std::function<void()> task) {
    {
      std::lock_guard lock(m_mutex);
      m_tasks.push_back(std::move(task));
    }
    m_cv.notify_one();
  }

  void work() {
    for (;;) {
      std::function<void()> task;
      {
        std::unique_lock lock(m_mutex);
        m_cv.wait(lock, [&] { return !m_tasks.empty() || m_produced == m_opt.events; });
        if (m_tasks.empty()) return;
        task = std::move(m_tasks.front());
        m_tasks.pop_front();
      }
      task();
    }
  }

  void acquire() {
    const std::uint64_t i = m_next++;
    if (i >= m_opt.events) return;
    auto inputs = m_kernel.make_inputs(params(i));
    m_tx.submit(m_kernel.name(), offload::product_views(inputs),
                [this, i](offload::result&& r) {
                  auto shared = std::make_shared<offload::result>(std::move(r));
                  push([this, i, shared] { produce(i, *shared); });
                });
  }

  void produce(std::uint64_t i, const offload::result& r) {
    m_latency[i] = r.latency();
    if (r.receiver() >= 0) {
      const auto& t = r.timing();
      m_stages[i] = {t.transmitter_queue(), t.network_out(), t.receiver_queue(), t.kernel(), t.network_back()};
      m_round_trip_check[i] = t.round_trip();
      m_remote[i] = 1;
    }
    if (!r.ok()) {
      spdlog::error("event {}: {}", i, r.error());
      ++m_failed;
    } else if (m_opt.validate) {
      auto inputs = m_kernel.make_inputs(params(i));
      auto diff = offload::compare_with_cpu(m_kernel, offload::product_views(inputs), r.products(), m_opt.tolerance,
                                            m_opt.tolerance);
      if (!diff.empty()) {
        spdlog::error("event {} (from {}): result differs from the local CPU implementation: {}", i,
                      r.receiver() >= 0 ? "receiver rank " + std::to_string(r.receiver()) : "local fallback", diff);
        ++m_mismatches;
      }
    }
    bool last;
    {
      std::lock_guard lock(m_mutex);
      last = ++m_produced == m_opt.events;
    }
    if (last)
      m_cv.notify_all();
    else
      push([this] { acquire(); });
  }

  offload::transmitter& m_tx;
  const offload::kernel& m_kernel;
  const options& m_opt;
  int m_rank;
  std::vector<double> m_latency;
  std::vector<std::array<double, 5>> m_stages;  // each slot written once, by its event's produce step
  std::vector<char> m_remote;
  std::vector<double> m_round_trip_check = std::vector<double>(m_latency.size());
  std::atomic<std::uint64_t> m_next{0};
  std::atomic<std::uint64_t> m_mismatches{0};
  std::atomic<std::uint64_t> m_failed{0};
  std::mutex m_mutex;
  std::condition_variable m_cv;
  std::deque<std::function<void()>> m_tasks;
  std::uint64_t m_produced = 0;  // guarded by m_mutex
};

std::string summary_table(const options& o, int world, const std::vector<rank_record>& recs,
                          const std::map<int, std::vector<double>>& lat, std::vector<double>& all_lat, double& wall,
                          std::uint64_t& total_events) {
  std::ostringstream os;
  char line[512];
  os << "offload-run: kernel " << o.kernel << " (size " << o.size << "), " << o.receivers << " receiver(s), "
     << world - o.receivers << " transmitter(s) x " << o.threads << " threads, " << o.inflight
     << " in flight, credits " << o.credits << ", backend " << o.backend << ", batch " << o.max_batch << "/"
     << o.max_wait_us << " us, validate "
     << (o.validate ? "on" : "off") << "\n";
  std::snprintf(line, sizeof line, "%6s %-12s %8s %9s %10s %9s %9s %9s %8s %9s %7s\n", "rank", "role", "events",
                "wall_s", "events/s", "p50_ms", "p90_ms", "p99_ms", "remote", "fallbacks", "errors");
  os << line;
  wall = 0;
  total_events = 0;
  std::uint64_t remote = 0, fallbacks = 0, errors = 0;
  for (const auto& r : recs) {
    if (r.is_receiver) continue;
    const auto& l = lat.at(r.rank);
    const std::uint64_t errs = r.failed + r.mismatches + std::uint64_t(r.setup_failed);
    std::snprintf(line, sizeof line, "%6d %-12s %8llu %9.3f %10.1f %9.3f %9.3f %9.3f %8llu %9llu %7llu\n", r.rank,
                  "transmitter", (unsigned long long)r.events, r.wall_s, r.wall_s > 0 ? double(r.events) / r.wall_s : 0.0,
                  1e3 * percentile(l, 0.5), 1e3 * percentile(l, 0.9), 1e3 * percentile(l, 0.99),
                  (unsigned long long)r.remote, (unsigned long long)r.fallbacks, (unsigned long long)errs);
    os << line;
    wall = std::max(wall, r.wall_s);
    total_events += r.events;
    remote += r.remote;
    fallbacks += r.fallbacks;
    errors += errs;
    all_lat.insert(all_lat.end(), l.begin(), l.end());
  }
  std::snprintf(line, sizeof line, "%6s %-12s %8llu %9.3f %10.1f %9.3f %9.3f %9.3f %8llu %9llu %7llu\n", "all", "",
                (unsigned long long)total_events, wall, wall > 0 ? double(total_events) / wall : 0.0,
                1e3 * percentile(all_lat, 0.5), 1e3 * percentile(all_lat, 0.9), 1e3 * percentile(all_lat, 0.99),
                (unsigned long long)remote, (unsigned long long)fallbacks, (unsigned long long)errors);
  os << line;
  for (const auto& r : recs) {
    if (!r.is_receiver) continue;
    std::snprintf(line, sizeof line,
                  "receiver rank %d (%s): requests %llu, replies %llu, error replies %llu, malformed %llu, handshake "
                  "failures %llu, MB in %.2f, MB out %.2f\n",
                  r.rank, r.backend, (unsigned long long)r.requests, (unsigned long long)r.replies,
                  (unsigned long long)r.error_replies, (unsigned long long)r.malformed,
                  (unsigned long long)r.handshake_failures, double(r.bytes_in) / 1e6, double(r.bytes_out) / 1e6);
    os << line;
    if (std::string_view(r.backend) == "cuda") os << "receiver rank " << r.rank << ": " << r.backend_description << "\n";
    if (o.max_batch > 1) {
      std::uint64_t batches = 0, requests = 0;
      std::string hist;
      for (std::size_t n = 1; n <= max_batch_limit; ++n) {
        if (r.batch_sizes[n] == 0) continue;
        batches += r.batch_sizes[n];
        requests += n * r.batch_sizes[n];
        hist += " " + std::to_string(n) + ":" + std::to_string(r.batch_sizes[n]);
      }
      std::snprintf(line, sizeof line, "receiver rank %d: %llu batches, mean size %.2f; size:count%s\n", r.rank,
                    (unsigned long long)batches, batches ? double(requests) / double(batches) : 0.0, hist.c_str());
      os << line;
    }
  }
  return os.str();
}

/// Gathers every rank's doubles on rank 0 (call on the progress thread, with no client left):
/// the concatenation, how many came from each rank, and where each rank's part starts.
std::vector<double> gather_doubles(offload::runtime& rt, const std::vector<double>& mine, std::vector<int>& counts,
                                   std::vector<int>& displs) {
  const int world = rt.size();
  const int n = int(mine.size());
  counts.assign(static_cast<std::size_t>(world), 0);
  displs.assign(static_cast<std::size_t>(world), 0);
  MPI_Gather(&n, 1, MPI_INT, counts.data(), 1, MPI_INT, 0, rt.comm());
  int total = 0;
  for (int i = 0; i < world; ++i) {
    displs[std::size_t(i)] = total;
    total += counts[std::size_t(i)];
  }
  std::vector<double> all(rt.rank() == 0 ? std::size_t(total) : 0);
  MPI_Gatherv(mine.data(), n, MPI_DOUBLE, all.data(), counts.data(), displs.data(), MPI_DOUBLE, 0, rt.comm());
  return all;
}

/// Mean and percentiles of each stage over every remote result, in ms.
std::string stage_table(const std::vector<rank_record>& recs, const std::vector<double>& flat) {
  const std::size_t n = flat.size() / 5;
  if (n == 0) return {};
  const char* names[] = {"transmitter queue", "network out", "receiver queue", "kernel", "network back"};
  std::ostringstream os;
  char line[256];
  std::snprintf(line, sizeof line, "stages of %zu remote requests (ms):\n%-18s %9s %9s %9s %9s\n", n, "stage", "mean",
                "p50", "p90", "p99");
  os << line;
  double total_mean = 0;
  for (std::size_t s = 0; s < 5; ++s) {
    std::vector<double> v(n);
    double sum = 0;
    for (std::size_t i = 0; i < n; ++i) sum += (v[i] = flat[i * 5 + s]);
    total_mean += sum / double(n);
    std::snprintf(line, sizeof line, "%-18s %9.3f %9.3f %9.3f %9.3f\n", names[s], 1e3 * sum / double(n),
                  1e3 * percentile(v, 0.5), 1e3 * percentile(v, 0.9), 1e3 * percentile(v, 0.99));
    os << line;
  }
  std::uint64_t bad = 0;
  for (const auto& r : recs) bad += r.stages_not_adding_up;
  std::snprintf(line, sizeof line, "%-18s %9.3f   (stages not adding up to their round trip: %llu)\n", "round trip",
                1e3 * total_mean, (unsigned long long)bad);
  os << line;
  return os.str();
}

void write_json(const std::string& path, const options& o, int world, const std::vector<rank_record>& recs,
                const std::vector<double>& all_lat, double wall, std::uint64_t events, int status) {
  std::ofstream f(path);
  if (!f) throw std::runtime_error("cannot write --json file '" + path + "'");
  f << "{\n  \"config\": {\"kernel\": \"" << o.kernel << "\", \"size\": " << o.size << ", \"work\": " << o.work
    << ", \"ranks\": " << world << ", \"receivers\": " << o.receivers << ", \"threads\": " << o.threads
    << ", \"inflight\": " << o.inflight << ", \"events_per_transmitter\": " << o.events
    << ", \"credits\": " << o.credits << ", \"timeout_ms\": " << o.timeout_ms << ", \"backend\": \"" << o.backend
    << "\", \"routing\": \"" << o.routing << "\", \"validate\": " << (o.validate ? "true" : "false") << ", \"max_batch\": " << o.max_batch
    << ", \"max_wait_us\": " << o.max_wait_us << "},\n";
  std::uint64_t fallbacks = 0, errors = 0, remote = 0;
  f << "  \"ranks\": [\n";
  for (std::size_t i = 0; i < recs.size(); ++i) {
    const auto& r = recs[i];
    if (!r.is_receiver) {
      fallbacks += r.fallbacks;
      remote += r.remote;
      errors += r.failed + r.mismatches + std::uint64_t(r.setup_failed);
    }
    f << "    {\"rank\": " << r.rank << ", \"role\": \"" << (r.is_receiver ? "receiver" : "transmitter")
      << "\", \"events\": " << r.events << ", \"wall_s\": " << r.wall_s << ", \"remote\": " << r.remote
      << ", \"fallbacks\": " << r.fallbacks << ", \"fallback_timeout\": " << r.fallback_timeout
      << ", \"fallback_error\": " << r.fallback_error << ", \"fallback_no_receiver\": " << r.fallback_no_receiver
      << ", \"failed\": " << r.failed << ", \"mismatches\": " << r.mismatches << ", \"late_replies\": " << r.late
      << ", \"setup_failed\": " << r.setup_failed << ", \"requests\": " << r.requests
      << ", \"replies\": " << r.replies << ", \"error_replies\": " << r.error_replies
      << ", \"malformed\": " << r.malformed << ", \"handshake_failures\": " << r.handshake_failures
      << ", \"bytes_in\": " << r.bytes_in << ", \"bytes_out\": " << r.bytes_out << ", \"backend\": \""
      << (r.is_receiver ? r.backend : "") << "\", \"backend_description\": \"" << r.backend_description
      << "\", \"batch_sizes\": {";
    bool first = true;
    for (std::size_t n = 1; n <= max_batch_limit; ++n) {
      if (r.batch_sizes[n] == 0) continue;
      f << (first ? "" : ", ") << "\"" << n << "\": " << r.batch_sizes[n];
      first = false;
    }
    f << "}}"
      << (i + 1 < recs.size() ? "," : "") << "\n";
  }
  f << "  ],\n  \"total\": {\"events\": " << events << ", \"wall_s\": " << wall
    << ", \"events_per_s\": " << (wall > 0 ? double(events) / wall : 0.0) << ", \"latency_p50_ms\": "
    << 1e3 * percentile(all_lat, 0.5) << ", \"latency_p90_ms\": " << 1e3 * percentile(all_lat, 0.9)
    << ", \"latency_p99_ms\": " << 1e3 * percentile(all_lat, 0.99) << ", \"remote\": " << remote
    << ", \"fallbacks\": " << fallbacks << ", \"errors\": " << errors << ", \"status\": " << status << "}\n}\n";
}

int run(offload::runtime& rt, const options& o, const offload::kernel_registry& kernels) {
  const int rank = rt.rank();
  const int world = rt.size();

  // Start-up checks that need MPI; every rank learns whether all passed before any work.
  std::string problem;
  std::unique_ptr<offload::receiver> rx;
  if (o.receivers >= world) {
    if (rank == 0)
      problem = "--receivers " + std::to_string(o.receivers) + " leaves no transmitter: the job has " +
                std::to_string(world) + " rank(s); use --receivers < " + std::to_string(world);
  } else if (rank < o.receivers) {
    offload::receiver_config cfg;
    cfg.credits = o.credits;
    cfg.threads = o.receiver_threads;
    cfg.backend = o.backend;
    cfg.limits.max_message_bytes = o.max_message_bytes;
    cfg.max_batch = o.max_batch;
    cfg.device = o.device;
    cfg.max_wait = std::chrono::microseconds(std::int64_t(o.max_wait_us));
    try {
      rx = std::make_unique<offload::receiver>(rt, kernels, std::size_t(world - o.receivers), cfg);
    } catch (const std::invalid_argument& e) {
      problem = e.what();
    }
  } else if (kernels.find(o.kernel) == nullptr) {
    problem = "--kernel " + o.kernel + " is not in this rank's --kernel-set";
  }
  if (!problem.empty()) spdlog::error("{}", problem);
  if (!rt.all_agree(problem.empty())) return 2;

  rank_record rec;
  rec.rank = rank;
  std::vector<double> latencies;
  std::vector<double> stages;  // 5 per remote event
  if (rx) {
    rec.is_receiver = 1;
    rt.barrier();
    auto s = rx->wait();
    rec.requests = s.requests;
    rec.replies = s.replies;
    rec.error_replies = s.error_replies;
    rec.malformed = s.malformed;
    rec.handshake_failures = s.handshake_failures;
    rec.bytes_in = s.bytes_in;
    rec.bytes_out = s.bytes_out;
    for (std::size_t n = 0; n < s.batch_sizes.size() && n <= max_batch_limit; ++n) rec.batch_sizes[n] = s.batch_sizes[n];
    std::snprintf(rec.backend, sizeof rec.backend, "%s", s.backend.c_str());
    std::snprintf(rec.backend_description, sizeof rec.backend_description, "%s", s.backend_description.c_str());
    rx.reset();
  } else {
    offload::transmitter_config cfg;
    cfg.credits = o.credits;
    cfg.timeout = std::chrono::microseconds(std::int64_t(o.timeout_ms * 1e3));
    cfg.policy = o.routing == "least_outstanding" ? offload::routing::least_outstanding : offload::routing::round_robin;
    cfg.limits.max_message_bytes = o.max_message_bytes;
    std::vector<int> receivers;
    for (int r = 0; r < o.receivers; ++r) receivers.push_back(r);
    std::unique_ptr<offload::transmitter> tx;
    try {
      tx = std::make_unique<offload::transmitter>(rt, kernels, receivers, cfg);
    } catch (const offload::handshake_error& e) {
      spdlog::error("handshake failed: {}", e.what());
      rec.setup_failed = 1;
    }
    rt.barrier();
    if (tx) {
      event_loop loop(*tx, *kernels.find(o.kernel), o, rank);
      const auto t0 = std::chrono::steady_clock::now();
      loop.run();
      rec.wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      tx->close();
      auto s = tx->stats();
      rec.events = o.events;
      rec.remote = s.remote;
      rec.fallbacks = s.fallbacks;
      rec.fallback_timeout = s.fallback_timeout;
      rec.fallback_error = s.fallback_error;
      rec.fallback_no_receiver = s.fallback_no_receiver;
      rec.failed = s.failed + loop.failed();
      rec.mismatches = loop.mismatches();
      rec.late = s.late_replies;
      rec.bytes_in = s.bytes_in;
      rec.bytes_out = s.bytes_out;
      latencies = loop.latencies();
      stages = loop.stages(rec.stages_not_adding_up);
    }
  }

  // Every client is closed: plain blocking collectives on the progress thread are safe now.
  std::vector<rank_record> recs(std::size_t(rank == 0 ? world : 0));
  std::vector<int> counts(static_cast<std::size_t>(world)), displs(static_cast<std::size_t>(world));
  std::vector<double> all;
  std::vector<double> all_stages;
  int status = 0;
  rt.call([&] {
    MPI_Gather(&rec, sizeof rec, MPI_BYTE, recs.data(), sizeof rec, MPI_BYTE, 0, rt.comm());
    all = gather_doubles(rt, latencies, counts, displs);
    std::vector<int> stage_counts, stage_displs;
    all_stages = gather_doubles(rt, stages, stage_counts, stage_displs);
  });
  if (rank == 0) {
    std::map<int, std::vector<double>> per_rank;
    for (int i = 0; i < world; ++i)
      per_rank[i].assign(all.begin() + displs[std::size_t(i)], all.begin() + displs[std::size_t(i)] + counts[std::size_t(i)]);
    bool ok = true;
    for (const auto& r : recs)
      ok = ok && r.failed == 0 && r.mismatches == 0 && r.setup_failed == 0 && r.handshake_failures == 0;
    status = ok ? 0 : 1;
    std::vector<double> all_lat;
    double wall = 0;
    std::uint64_t events = 0;
    std::fputs(summary_table(o, world, recs, per_rank, all_lat, wall, events).c_str(), stdout);
    std::fputs(stage_table(recs, all_stages).c_str(), stdout);
    std::printf("status: %s\n", ok ? "ok" : "FAILED (see errors above)");
    std::fflush(stdout);
    if (!o.json.empty()) write_json(o.json, o, world, recs, all_lat, wall, events, status);
  }
  rt.call([&] { MPI_Bcast(&status, 1, MPI_INT, 0, rt.comm()); });
  return status;
}

}  // namespace

int main(int argc, char** argv) {
  options o;
  CLI::App app{"offload-run: CPU event loops offloading a kernel to receiver ranks over MPI.\n"
               "Launch with mpirun; ranks below --receivers serve, the others transmit."};
  app.option_defaults()->always_capture_default();
  app.add_option("--receivers", o.receivers, "number of receiver ranks (ranks 0..R-1); 0 runs everything locally")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--kernel", o.kernel, "kernel each event offloads");
  app.add_option("--events", o.events, "events per transmitter rank")
      ->check(CLI::Range(std::uint64_t{1}, std::uint64_t{1} << 40));
  app.add_option("--threads", o.threads, "worker threads per transmitter rank")->check(CLI::Range(1, 1024));
  app.add_option("--inflight", o.inflight, "events in flight per transmitter rank")->check(CLI::Range(1, 1 << 20));
  app.add_flag("--validate", o.validate, "check every result against the local CPU implementation");
  app.add_option("--timeout-ms", o.timeout_ms, "per-request timeout before the CPU fallback")
      ->check(CLI::Range(0.001, 1e9));
  app.add_option("--json", o.json, "write configuration and results as JSON to this file (rank 0)");
  app.add_option("--size", o.size, "input size per event: mlp jets (256), clustering grid side (64), synthetic elements (4096), echo "
                 "bytes (65536); 0 picks the kernel's default");
  app.add_option("--work", o.work, "synthetic: iterations per element");
  app.add_option("--seed", o.seed, "seed of the generated events");
  app.add_option("--credits", o.credits, "requests outstanding per transmitter at each receiver")
      ->check(CLI::Range(1, 1 << 16));
  app.add_option("--receiver-threads", o.receiver_threads, "kernel threads per receiver")->check(CLI::Range(1, 1024));
  app.add_option("--routing", o.routing, "receiver choice")->check(CLI::IsMember({"round_robin", "least_outstanding"}));
  app.add_option("--backend", o.backend, "receiver backend; auto: cuda where a GPU is usable, else cpu (saying why)")->check(CLI::IsMember({"auto", "cpu", "cuda"}));
  app.add_option("--kernel-set", o.kernel_set, "kernels this rank offers (default: all); ranks must agree")
      ->delimiter(',');
  app.add_option("--max-message-bytes", o.max_message_bytes, "largest message accepted")
      ->check(CLI::Range(std::uint64_t{4096}, std::uint64_t{2147483647}));
  app.add_option("--tolerance", o.tolerance, "relative and absolute tolerance of --validate")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--device", o.device, "CUDA device of the receivers; -1: local rank modulo the visible devices")
      ->check(CLI::Range(-1, 1024));
  app.add_option("--max-batch", o.max_batch, "receivers run up to this many requests of one kernel together")
      ->check(CLI::Range(1, int(max_batch_limit)));
  app.add_option("--max-wait-us", o.max_wait_us, "how long a receiver holds a batch open for more requests")
      ->check(CLI::Range(0.0, 1e7));
  app.add_option("--spin-us", o.spin_us, "an idle progress thread polls without pause this long")
      ->check(CLI::Range(0, 10000000));
  app.add_option("--yield-us", o.yield_us, "then yields between polls until this long after its last work")
      ->check(CLI::Range(0, 10000000));
  app.add_option("--idle-sleep-us", o.idle_sleep_us,
                 "longest sleep of an idle progress thread: the latency an idle rank may add, against its CPU use")
      ->check(CLI::Range(1, 100000));
  app.add_option("--log-level", o.log_level, "trace, debug, info, warn, error")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error"}));
  const char* world_rank = std::getenv("OMPI_COMM_WORLD_RANK");
  const bool speaker = world_rank == nullptr || std::string(world_rank) == "0";
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (speaker || e.get_exit_code() == 0) return app.exit(e);
    return e.get_exit_code();
  }
  spdlog::set_level(spdlog::level::from_str(o.log_level));

  // Checks that need no MPI, made before any work starts.
  std::unique_ptr<offload::kernel_registry> kernels;
  try {
    kernels = std::make_unique<offload::kernel_registry>(
        o.kernel_set.empty() ? offload::kernel_registry::builtin() : offload::kernel_registry::builtin().subset(o.kernel_set));
    offload::kernel_registry::builtin().subset({o.kernel});  // throws for an unknown kernel
  } catch (const std::invalid_argument& e) {
    if (speaker) std::fprintf(stderr, "offload-run: %s\n", e.what());
    return 2;
  }
  if (o.size == 0) o.size = default_size(o.kernel);

  std::unique_ptr<offload::runtime> rt;
  try {
    offload::progress_options progress;
    progress.max_sleep = std::chrono::microseconds(o.idle_sleep_us);
    progress.spin = std::chrono::microseconds(o.spin_us);
    progress.yield = std::chrono::microseconds(o.yield_us);
    rt = std::make_unique<offload::runtime>(progress);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "offload-run: MPI start-up failed: %s\n", e.what());
    return 1;
  }
  spdlog::set_pattern("[%H:%M:%S.%e] [rank " + std::to_string(rt->rank()) + "] [%l] %v");
  try {
    return run(*rt, o, *kernels);
  } catch (const std::exception& e) {
    // Other ranks may be waiting on this one: end the whole job rather than hang it.
    spdlog::critical("{}", e.what());
    rt->abort(1);
  }
}
