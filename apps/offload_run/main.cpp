// offload-run: the measurement app. Ranks below --receivers serve; the others run a cmsRun-like
// event loop (event_loop.hpp) of the chosen --workload, offloading its modules (--mode remote)
// or running them inline (--mode local). Rank 0 prints the summary and writes --csv/--json.
#include "apps/common/logging.hpp"
#include "apps/common/options.hpp"
#include "apps/common/process.hpp"
#include "apps/common/workload.hpp"
#include "event_loop.hpp"
#include "memory.hpp"
#include "placement.hpp"
#include "report.hpp"
#include "report_output.hpp"
#include "service.hpp"

#include <offload/grpc.hpp>
#if OFFLOAD_WITH_KSERVE
#include <offload/kserve.hpp>
#endif
#include <offload/mpi.hpp>
#include <offload/receiver.hpp>
#include <offload/runtime.hpp>
#include <offload/transmitter.hpp>

#include <spdlog/spdlog.h>

#include <malloc.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <mutex>

namespace {

using offload::app::json;
using offload::app::options;
using offload::app::process_cpu_seconds;
using offload::app::thread_cpu_seconds;

/// Keeps glibc's malloc from handing freed memory back to the kernel after every event. By
/// default it trims a thread arena once 128 KiB at its top are free (madvise, a TLB shootdown
/// on every core) and maps blocks over 128 KiB..32 MiB fresh, so each event's input buffers
/// come back as new pages: a page fault per 4 KiB, about 12 µs each in our VM. That cost the
/// 7 -> 1 echo benchmark two thirds of its rate (results/overhead.md). cmsRun avoids the same
/// with jemalloc; here two mallopt calls do.
void keep_freed_memory() {
  mallopt(M_MMAP_THRESHOLD, 32 << 20);  // the largest glibc accepts
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
}

/// Whether the user sees this process's stderr on a terminal. Under mpirun a rank's stderr is
/// a pipe to the launcher, so the launcher's (the parent process's) stderr is what counts.
bool stderr_is_terminal() {
  if (isatty(STDERR_FILENO)) return true;
  std::error_code ec;
  const auto target = std::filesystem::read_symlink("/proc/" + std::to_string(getppid()) + "/fd/2", ec).string();
  return !ec && (target.rfind("/dev/pts/", 0) == 0 || target.rfind("/dev/tty", 0) == 0);
}

/// MPI_Bcast on the progress thread; nothing to do in a process without MPI (one rank).
void broadcast(offload::runtime& rt, void* data, int count, MPI_Datatype type, int root) {
  if (offload::comm_of(rt) == MPI_COMM_NULL) return;
  rt.call([&] { MPI_Bcast(data, count, type, root, offload::comm_of(rt)); });
}

/// True when a launcher (mpirun, srun) started this process as an MPI rank.
bool launched_as_rank() {
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK"})
    if (std::getenv(v) != nullptr) return true;
  return false;
}

/// Every rank's `mine` (cut to `width` - 1 bytes), in rank order; just `mine` without MPI.
std::vector<std::string> allgather_strings(offload::runtime& rt, std::string mine, std::size_t width) {
  if (offload::comm_of(rt) == MPI_COMM_NULL) return {mine};
  mine.resize(width, '\0');
  mine.back() = '\0';
  std::string all(width * std::size_t(rt.size()), '\0');
  rt.call([&] {
    MPI_Allgather(mine.data(), int(width), MPI_CHAR, all.data(), int(width), MPI_CHAR, offload::comm_of(rt));
  });
  std::vector<std::string> out;
  for (int r = 0; r < rt.size(); ++r) out.emplace_back(all.c_str() + std::size_t(r) * width);
  return out;
}

/// gRPC over mpirun: every rank learns the address of each receiver rank (ranks 0..R-1).
std::vector<std::string> receiver_addresses(offload::runtime& rt, const options& o, int my_port) {
  std::string mine;
  if (rt.rank() < o.receivers) {
    const std::string host = o.listen.substr(0, o.listen.rfind(':'));
    const bool any = host.empty() || host == "0.0.0.0" || host == "[::]" || host == "::";
    mine = (any ? rt.host() : host) + ":" + std::to_string(my_port);
  }
  auto out = allgather_strings(rt, mine, 512);
  out.resize(std::size_t(o.receivers));
  return out;
}

/// Gathers every rank's vector on rank 0 (call on the progress thread with no client left).
template <class T> std::vector<std::vector<T>> gather(offload::runtime& rt, const std::vector<T>& mine) {
  if (offload::comm_of(rt) == MPI_COMM_NULL) return {mine};
  const int world = rt.size();
  const int bytes = int(mine.size() * sizeof(T));
  std::vector<int> counts(static_cast<std::size_t>(world)), displs(static_cast<std::size_t>(world));
  MPI_Gather(&bytes, 1, MPI_INT, counts.data(), 1, MPI_INT, 0, offload::comm_of(rt));
  int total = 0;
  for (int i = 0; i < world; ++i) {
    displs[std::size_t(i)] = total;
    total += counts[std::size_t(i)];
  }
  std::vector<char> all(rt.rank() == 0 ? std::size_t(total) : 0);
  MPI_Gatherv(mine.data(), bytes, MPI_BYTE, all.data(), counts.data(), displs.data(), MPI_BYTE, 0,
              offload::comm_of(rt));
  std::vector<std::vector<T>> out;
  if (rt.rank() != 0) return out;
  for (int i = 0; i < world; ++i) {
    std::vector<T> part(static_cast<std::size_t>(counts[std::size_t(i)]) / sizeof(T));
    if (!part.empty()) std::memcpy(part.data(), all.data() + displs[std::size_t(i)], part.size() * sizeof(T));
    out.push_back(std::move(part));
  }
  return out;
}

/// The progress line of the first transmitter: its own events, about once a second after the
/// first two seconds.
class progress_line {
 public:
  progress_line(bool enabled, std::uint64_t events, int rank) : m_on(enabled), m_events(events), m_rank(rank) {}
  void operator()(std::uint64_t done) {
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - m_t0).count();
    if (!m_on || s < 2.0) return;
    const double rate = double(done) / s;
    std::fprintf(stderr, "\roffload-run: rank %d: %llu/%llu events (%.0f%%), %.1f events/s, %.0f s left   ", m_rank,
                 (unsigned long long)done, (unsigned long long)m_events, 100.0 * double(done) / double(m_events), rate,
                 rate > 0 ? double(m_events - done) / rate : 0.0);
    std::fflush(stderr);
    m_printed = true;
  }
  ~progress_line() {
    if (m_printed) std::fputs("\n", stderr);
  }

 private:
  bool m_on;
  std::uint64_t m_events;
  int m_rank;
  bool m_printed = false;
  std::chrono::steady_clock::time_point m_t0 = std::chrono::steady_clock::now();
};

/// One run of events. `link`: this job's connection to a receiver service (every rank transmits).
/// One rank's part of a run: what the steps below share.
struct rank_run {
  rank_run(offload::runtime& r, const options& opts, const offload::kernel_registry& k, offload::app::workload wl,
           const offload::app::service_link* l)
      : rt(r), o(opts), kernels(k), w(std::move(wl)), link(l), rank(r.rank()), receiver_rank(rank < opts.receivers) {}
  offload::runtime& rt;
  const options& o;
  const offload::kernel_registry& kernels;
  offload::app::workload w;
  const offload::app::service_link* link;  // set when this job connects to a receiver service
  int rank = 0;
  bool receiver_rank = false;
  std::unique_ptr<offload::app::placement> where;
  std::vector<const offload::kernel*> module_kernels;  // a transmitter's, one per module
  double ns_per_iteration = 0;
  std::vector<int> share;  // --bind: this rank's PUs
  json me;                 // what this rank reports to rank 0
  offload::app::memory_sampler memory;
  double cpu0 = 0, progress_cpu0 = 0;  // at the start of the measured window
  long minor_faults0 = 0;              // the process's minor page faults at the start of the window

  /// The CPU window: what the process and its progress thread use from cpu_start() to cpu_stop(),
  /// the same span as the rank's wall_s (the measured events, or a receiver's serving), so that
  /// "% of a core" divides by the time the CPU was counted over. Minor page faults (first touches
  /// of fresh pages, every thread of the process) are counted over the same window.
  void cpu_start() {
    cpu0 = process_cpu_seconds();
    progress_cpu0 = rt.call([] { return thread_cpu_seconds(); });
    minor_faults0 = process_minor_faults();
  }
  void cpu_stop() {
    const double progress = rt.call([] { return thread_cpu_seconds(); }) - progress_cpu0;
    const long faults = process_minor_faults() - minor_faults0;
    me["cpu"] = {{"progress_thread_s", progress},
                 {"process_s", process_cpu_seconds() - cpu0},
                 {"minor_faults", std::uint64_t(std::max(faults, 0L))}};
  }
  static long process_minor_faults() {
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    return u.ru_minflt;
  }
  std::vector<double> event_times;
  std::vector<double> requests;  // request_record::doubles per request
  std::vector<std::string> worker_binding;
};

/// What decides calibrate()'s collective steps on this rank, in words (check_setup compares it
/// across ranks).
std::string calibration_shape(const rank_run& j) {
  const auto& o = j.o;
  if (o.cpu_work == "emulated") return "--cpu-work emulated, nothing measured";
  if (o.ns_per_iteration > 0) return "--ns-per-iteration given, nothing measured";
  if (!o.module_work.empty()) return "--cpu-work real, the loop's cost measured, --module-work given";
  return "--cpu-work real, the loop's cost and " + std::to_string(j.w.modules.size()) + " module(s) measured";
}

/// Start-up checks that need MPI; false (on every rank) when any rank failed one.
bool check_setup(rank_run& j) {
  const int world = j.rt.size();
  std::string problem;
  // The job's one calibration (calibrate) is a collective whose shape these flags decide: ranks
  // started with different ones (an MPMD launch) would wait for each other for ever.
  const auto shapes = allgather_strings(j.rt, calibration_shape(j), 256);
  for (std::size_t r = 1; r < shapes.size() && j.rank == 0; ++r)
    if (shapes[r] != shapes[0]) {
      problem = "ranks 0 and " + std::to_string(r) +
                " were started with different calibration flags (rank 0: " + shapes[0] + "; rank " + std::to_string(r) +
                ": " + shapes[r] +
                "): --cpu-work, --ns-per-iteration, --module-work and the workload's number of modules must be the "
                "same on every rank, which calibrate the job together";
      break;
    }
  try {
    j.where = std::make_unique<offload::app::placement>();
  } catch (const std::exception& e) {
    problem = e.what();
  }
  if (j.o.receivers >= world) {
    if (j.rank == 0)
      problem = "--receivers " + std::to_string(j.o.receivers) + " leaves no transmitter: the job has " +
                std::to_string(world) + " rank(s); use --receivers < " + std::to_string(world);
  } else if (!j.receiver_rank) {
    for (const auto& m : j.w.modules) {
      j.module_kernels.push_back(j.kernels.find(m.kernel));
      if (j.module_kernels.back() == nullptr)
        problem = "--kernel " + m.kernel + " (module " + m.name + ") is not in this rank's --kernel-set";
    }
  }
  if (!problem.empty()) spdlog::error("{}", problem);
  return j.rt.all_agree(problem.empty());
}

/// One calibration for the whole job, by the first transmitter, so every rank does the same
/// work. --ns-per-iteration pins the loop's cost; --module-work pins the modules' iterations.
void calibrate(rank_run& j) {
  const auto& o = j.o;
  j.ns_per_iteration = o.ns_per_iteration;
  if (o.cpu_work == "emulated") j.ns_per_iteration = 1.0;  // an iteration is a nanosecond held
  const bool measure = j.ns_per_iteration <= 0;
  if (measure) {
    if (j.rank == o.receivers) j.ns_per_iteration = offload::app::measure_ns_per_iteration();
    broadcast(j.rt, &j.ns_per_iteration, 1, MPI_DOUBLE, o.receivers);
  }
  offload::app::resolve(j.w, o.time_scale, j.ns_per_iteration);
  if (!o.module_work.empty()) {
    for (std::size_t i = 0; i < j.w.modules.size(); ++i) j.w.modules[i].work = o.module_work[i];
  } else if (measure) {
    auto counts = offload::app::derived_counts(j.w);
    if (j.rank == o.receivers) {
      offload::app::refine_modules(j.w, o.time_scale, j.module_kernels);
      counts = offload::app::derived_counts(j.w);
    }
    broadcast(j.rt, counts.data(), int(counts.size()), MPI_UINT64_T, o.receivers);
    offload::app::set_derived_counts(j.w, counts);
  }
}

/// Placement: this rank's share of the node's cores; the progress thread on the first.
void place(rank_run& j) {
  const auto& o = j.o;
  if (o.bind) {
    j.share = j.where->share(j.rt.local_rank(), j.rt.local_size());
    std::vector<int> process = j.share;
    if (j.receiver_rank && j.share.size() > 1) process.erase(process.begin());  // kernel threads off the progress core
    j.where->bind_process(process);
    j.rt.call([&] { j.where->bind_thread(j.share.front()); });
  }
  // (A rank the launcher bound to one core: the library warns, offload::runtime::attach.)
}

/// A receiver rank: serves every transmitter of the job until each said goodbye.
void serve(rank_run& j, std::unique_ptr<offload::receiver> rx) {
  j.rt.barrier();
  j.memory.mark();
  j.cpu_start();
  const auto t0 = std::chrono::steady_clock::now();
  const auto s = rx->wait();
  j.me["wall_s"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  j.cpu_stop();
  j.me["memory"] = j.memory.stop();
  json batches = json::object();
  for (std::size_t n = 1; n < s.batch_sizes.size(); ++n)
    if (s.batch_sizes[n]) batches[std::to_string(n)] = s.batch_sizes[n];
  for (const auto& c : offload::receiver_stats::counters()) j.me[c.name] = s.*c.member;
  j.me.update(json{{"backend", s.backend},
                   {"backend_description", s.backend_description},
                   {"batch_sizes", batches},
                   {"batch_items", s.batch_items},
                   {"busy_s", s.busy_s},
                   {"queued_request_s", s.queued_request_s}});
}

/// A transmitter of --mode remote: connected to the job's (or the service's) receivers, or
/// nullptr when the handshake failed (reported as setup_failed).
std::unique_ptr<offload::transmitter> connect(rank_run& j, const std::vector<std::string>& grpc_addresses) {
  const auto& o = j.o;
  const auto cfg = offload::app::transmitter_settings(o);
  offload::mpi_link receivers{{}, MPI_COMM_NULL, o.blocking_receive_below, o.parts_from};
  for (int r = 0; r < o.receivers; ++r) receivers.ranks.push_back(r);
  if (j.link) {  // the service's receivers are ranks 0..R-1 of the merged communicator
    receivers.comm = j.link->merged;
    for (int r = 0; r < j.link->receivers; ++r) receivers.ranks.push_back(r);
  }
  // The kernels this rank will call: the handshake checks those only (a receiver may have more,
  // or lack others of --kernel-set).
  std::vector<std::string> used;
  for (const auto* k : j.module_kernels)
    if (std::find(used.begin(), used.end(), k->name()) == used.end()) used.emplace_back(k->name());
  const auto kernels = j.kernels.subset(used);
  try {
#if OFFLOAD_WITH_KSERVE
    if (o.kserve())
      return std::make_unique<offload::transmitter>(
          j.rt, kernels,
          offload::app::transmitter_link(o, offload::kserve_link{.addresses = grpc_addresses,
                                                                 .credits = o.credits,
                                                                 .security = offload::app::client_security_of(o)}),
          cfg);
#else
    if (o.kserve()) throw std::invalid_argument("--transport kserve: this build has no gRPC");
#endif
    if (o.grpc())
      return std::make_unique<offload::transmitter>(
          j.rt, kernels,
          offload::app::transmitter_link(o, offload::grpc_link{grpc_addresses, offload::app::client_security_of(o)}),
          cfg);
    return std::make_unique<offload::transmitter>(j.rt, kernels, offload::app::transmitter_link(o, receivers), cfg);
  } catch (const offload::handshake_error& e) {
    spdlog::error("handshake failed: {}", e.what());
    j.me["setup_failed"] = true;
    return nullptr;
  }
}

/// A transmitter rank: the warm-up and the measured event loop (`tx` null: --mode local).
void run_events(rank_run& j, offload::transmitter* tx) {
  const auto& o = j.o;
  offload::app::loop_options lo;
  lo.threads = o.threads;
  lo.inflight = o.inflight;
  lo.events = o.events;
  lo.seed = o.seed;
  lo.stream = j.rank - o.receivers;
  lo.validate = o.validate;
  lo.tolerance = o.tolerance;
  lo.hold_cpu = o.cpu_work == "emulated";
  lo.copy_inputs = o.copy_inputs;
  lo.fresh_malloc = o.fresh_malloc;
  lo.same_inputs = o.same_inputs;
  lo.priority = o.priority;
  offload::transmitter_stats before;  // the warm-up's share of the transmitter's counters
  std::uint64_t warmup_failures = 0;
  if (o.warmup_events > 0) {
    auto wo = lo;
    wo.events = o.warmup_events;
    wo.seed = ~o.seed;  // other events than the measured ones
    offload::app::event_loop warmup(tx, j.w, j.module_kernels, wo);
    warmup.run();
    warmup_failures = warmup.failed() + warmup.mismatches();
    if (tx) before = tx->stats();
  }
  offload::app::event_loop loop(tx, j.w, j.module_kernels, lo);
  j.memory.mark();  // after the loop's result storage is allocated and touched
  progress_line line(!o.quiet && j.rank == o.receivers && stderr_is_terminal(), o.events, j.rank);
  std::mutex binding_mutex;
  j.cpu_start();
  const auto t0 = std::chrono::steady_clock::now();
  loop.run([&](std::uint64_t done) { line(done); },
           [&](int t) {
             if (o.bind) j.where->bind_thread(j.share[j.share.size() > 1 ? std::size_t(1 + t) % j.share.size() : 0]);
             std::lock_guard lock(binding_mutex);
             j.worker_binding[std::size_t(t)] = j.where->thread_binding();
           });
  j.me["wall_s"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  j.cpu_stop();
  j.me["memory"] = j.memory.stop();  // before the report's own allocations
  offload::transmitter_stats s;
  if (tx) {
    tx->close();
    s = offload::counters_minus(tx->stats(), before);
  } else {
    s.submitted = o.events * j.w.modules.size();
  }
  char digest[17];
  std::snprintf(digest, sizeof digest, "%016llx", static_cast<unsigned long long>(loop.digest()));
  for (const auto& c : offload::transmitter_stats::counters()) j.me[c.name] = s.*c.member;
  j.me.update(json{{"stream", lo.stream},
                   {"events", o.events},
                   {"failed", s.failed + loop.failed() + warmup_failures},  // the event loop's failures too
                   {"mismatches", loop.mismatches()},
                   {"stages_not_adding_up", loop.stages_not_adding_up()},
                   {"digest", digest}});
  j.event_times = loop.event_times();
  // The steady rate: events completed in a fixed window of the run, from 15% to 75% of the time
  // its last event ended, over the window's length. It leaves out the ramp at the start and the
  // tail at the end (the last events finish one by one, with threads idle), which in a short
  // run weigh more than they do in a long one.
  const auto& ends = loop.event_ends();
  const double last = ends.empty() ? 0.0 : *std::max_element(ends.begin(), ends.end());
  const auto in_window =
      std::count_if(ends.begin(), ends.end(), [&](double t) { return t > 0.15 * last && t <= 0.75 * last; });
  j.me["steady_events_per_s"] = offload::app::ratio(double(in_window), 0.6 * last);
  // The share of each event's time spent waiting on remote results (mean over events), and of all of it.
  double wait_sum = 0, time_sum = 0, fraction_sum = 0;
  for (std::size_t e = 0; e < j.event_times.size(); ++e) {
    wait_sum += loop.event_waits()[e];
    time_sum += j.event_times[e];
    fraction_sum += offload::app::ratio(loop.event_waits()[e], j.event_times[e]);
  }
  j.me["remote_wait"] = {{"mean_fraction", offload::app::ratio(fraction_sum, double(j.event_times.size()))},
                         {"total_fraction", offload::app::ratio(wait_sum, time_sum)},
                         {"mean_ms", 1e3 * offload::app::ratio(wait_sum, double(j.event_times.size()))}};
  for (const auto& r : loop.requests()) r.flatten(j.requests);
}

/// Gathers every rank's figures on rank 0, which prints the summary and writes --csv/--json.
/// Returns the run's status on every rank.
int report(rank_run& j) {
  const auto& o = j.o;
  // Every client is closed: plain blocking collectives on the progress thread are safe now.
  const std::string mine = j.me.dump();
  std::vector<std::vector<char>> texts;
  std::vector<std::vector<double>> all_times, all_requests;
  std::string mpi_library(MPI_MAX_LIBRARY_VERSION_STRING, '\0');
  j.rt.call([&] {
    texts = gather(j.rt, std::vector<char>(mine.begin(), mine.end()));
    all_times = gather(j.rt, j.event_times);
    all_requests = gather(j.rt, j.requests);
    int len = 0;
    if (offload::comm_of(j.rt) != MPI_COMM_NULL) MPI_Get_library_version(mpi_library.data(), &len);
    mpi_library.resize(std::size_t(len));
  });
  int status = 0;
  if (j.rank == 0) {
    json ranks = json::array();
    std::vector<std::vector<offload::app::request_record>> records;
    for (std::size_t r = 0; r < texts.size(); ++r) {
      ranks.push_back(json::parse(texts[r].begin(), texts[r].end()));
      auto& list = records.emplace_back();
      const auto& flat = all_requests[r];
      for (std::size_t i = 0; i + offload::app::request_record::doubles <= flat.size();
           i += offload::app::request_record::doubles)
        list.push_back(offload::app::request_record::unflatten(&flat[i]));
    }
    while (!mpi_library.empty() && (mpi_library.back() == '\n' || mpi_library.back() == '\0')) mpi_library.pop_back();
    const json report = offload::app::make_report(
        o, j.w, j.ns_per_iteration, offload::app::job_metadata(o, mpi_library), std::move(ranks), all_times, records);
    const bool ok = report["total"]["status"] == "ok";
    status = ok ? 0 : 1;
    std::fputs(offload::app::human_summary(report).c_str(), stdout);
    std::printf("status: %s\n", ok ? "ok" : "FAILED (see errors above)");
    std::fflush(stdout);
    try {
      if (!o.csv.empty()) offload::app::append_csv(o.csv, report);
      if (!o.json.empty()) offload::app::write_json(o.json, report);
      if (!o.calibration_file.empty()) {
        std::ofstream out(o.calibration_file);
        out << offload::app::calibration_file_text(o, j.w, report, records);
        if (!out) throw std::runtime_error("--calibrate " + o.calibration_file + ": cannot be written");
        std::printf("calibration: %s\n", o.calibration_file.c_str());
      }
    } catch (const std::exception& e) {
      spdlog::error("{}", e.what());
      status = 2;
    }
  }
  broadcast(j.rt, &status, 1, MPI_INT, 0);
  return status;
}

int run(offload::runtime& rt, const options& o, const offload::kernel_registry& kernels, offload::app::workload w,
        const offload::app::service_link* link) {
  rank_run j(rt, o, kernels, std::move(w), link);
  if (!check_setup(j)) return 2;
  calibrate(j);
  place(j);
  j.me = json{{"rank", j.rank},
              {"role", j.receiver_rank ? "receiver" : "transmitter"},
              {"host", rt.host()},
              {"pid", long(getpid())},
              {"topology", j.where->summary()}};
  j.worker_binding.resize(std::size_t(j.receiver_rank ? 0 : o.threads));
  j.cpu_start();  // (a rank that measures nothing reports its whole run)

  std::unique_ptr<offload::receiver> rx;
  std::string problem;
  if (j.receiver_rank) {
    const auto cfg = offload::app::receiver_settings(o);
    try {
      const auto peers = std::size_t(rt.size() - o.receivers);
      auto over = o.grpc() ? offload::transport(offload::app::grpc_listen_of(o, o.listen))
                           : offload::mpi_link{{}, MPI_COMM_NULL, o.blocking_receive_below, o.parts_from};
#if OFFLOAD_WITH_KSERVE
      if (!o.kserve_listen.empty())  // KServe v2 clients beside this job's transmitters
        over = offload::listen_all{{over, offload::kserve_listen{.address = o.kserve_listen,
                                                                 .memory_bytes = o.grpc_memory,
                                                                 .security = offload::app::server_security_of(o)}}};
#else
      if (!o.kserve_listen.empty()) throw std::invalid_argument("--kserve: this build has no gRPC");
#endif
      rx = std::make_unique<offload::receiver>(rt, kernels, offload::app::receiver_link(o, over), peers, cfg);
      if (!o.kserve_listen.empty()) {  // (on stdout, as offload-serve says where it listens)
        std::printf("receiver rank %d: serving KServe v2 clients on %s:%d beside this job's transmitters\n", rt.rank(),
                    o.kserve_listen.substr(0, o.kserve_listen.rfind(':')).c_str(), rx->ports().back());
        std::fflush(stdout);
      }
    } catch (const std::exception& e) {  // bad settings, or gRPC cannot listen
      problem = e.what();
      spdlog::error("{}", problem);
    }
  }
  if (!rt.all_agree(problem.empty())) return 2;
  std::vector<std::string> grpc_addresses = o.connect_to;
  if (o.grpc() && o.receivers > 0) grpc_addresses = receiver_addresses(rt, o, rx ? rx->port() : 0);

  if (rx) {
    serve(j, std::move(rx));
  } else {
    auto tx = o.mode == "remote" ? connect(j, grpc_addresses) : nullptr;
    rt.barrier();
    if (tx || o.mode == "local") run_events(j, tx.get());
  }
  if (!j.me.contains("cpu")) j.cpu_stop();
  if (!j.me.contains("memory")) j.me["memory"] = j.memory.stop();
  j.me["binding"] = {{"bound", o.bind},
                     {"process", j.where->process_binding()},
                     {"progress_thread", rt.call([&] { return j.where->thread_binding(); })}};
  if (!j.receiver_rank) j.me["binding"]["workers"] = j.worker_binding;
  return report(j);
}

}  // namespace

int main(int argc, char** argv) {
  keep_freed_memory();
  // A peer that dies mid-message (a transmitter job killed while a receiver service writes to
  // it over Open MPI's TCP BTL) must cost a write error, not this process: without this, the
  // service died of SIGPIPE in 2 of 5 runs of mpi.faults' killed-transmitter case.
  std::signal(SIGPIPE, SIG_IGN);
  options o;
  o.argv.assign(argv, argv + argc);
  CLI::App app{
      "offload-run: CPU event loops offloading their modules to receiver ranks over MPI or gRPC.\n"
      "Launch with mpirun; ranks below --receivers serve, the others run events. With --transport grpc\n"
      "--connect HOST:PORT (offload-serve) every rank transmits, and mpirun is optional."};
  offload::app::add_options(app, o);
  const char* world_rank = std::getenv("OMPI_COMM_WORLD_RANK");
  const bool speaker = world_rank == nullptr || std::string(world_rank) == "0";
  try {
    app.parse(argc, argv);
    offload::app::finish_options(app, o);
  } catch (const CLI::ParseError& e) {
    if (speaker || e.get_exit_code() == 0) return app.exit(e);
    return e.get_exit_code();
  }
  offload::app::setup_logging(o.log_level, "offload-run");

  // Checks that need no MPI, made before any work starts.
  std::unique_ptr<offload::kernel_registry> kernels;
  offload::app::workload w;
  try {
    const auto available = offload::app::available_kernels(o);
    kernels = std::make_unique<offload::kernel_registry>(offload::app::kernel_set(o, available));
    w = offload::app::make_workload(o.workload, available, o.kernel, o.size, o.work);
    if (o.cpu_before_ms >= 0) w.before_ms = o.cpu_before_ms;
    if (o.cpu_after_ms >= 0) w.after_ms = o.cpu_after_ms;
    offload::app::check_run(o, w);
    if (!o.module_work.empty() && o.module_work.size() != w.modules.size())
      throw std::invalid_argument("--module-work has " + std::to_string(o.module_work.size()) + " value(s); workload " +
                                  w.name + " has " + std::to_string(w.modules.size()) + " module(s)");
    for (const auto& m : w.modules) available.subset({m.kernel});  // throws for an unknown kernel
  } catch (const std::exception& e) {                              // std::invalid_argument, offload::plugin_error
    if (speaker) std::fprintf(stderr, "offload-run: %s\n", e.what());
    return 2;
  }

  std::unique_ptr<offload::runtime> rt;
  try {
    offload::progress_options progress;
    progress.max_sleep = std::chrono::microseconds(o.idle_sleep_us);
    progress.spin = std::chrono::microseconds(o.spin_us);
    progress.yield = std::chrono::microseconds(o.yield_us);
    progress.adaptive = o.wait_policy == "adaptive";  // the others poll for fixed times
    progress.thread_multiple = o.service_mode();      // the main thread blocks in accept/connect
    progress.mpi = !o.grpc() || launched_as_rank();   // gRPC without mpirun: no MPI at all
    rt = std::make_unique<offload::runtime>(progress);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "offload-run: start-up failed: %s\n", e.what());
    return 1;
  }
  offload::app::setup_logging(o.log_level, "rank " + std::to_string(rt->rank()));
  if (o.grpc() && o.listen.empty()) {  // receivers on loopback when the whole job is on this host
    const auto hosts = allgather_strings(*rt, rt->host(), 256);
    const bool one_host = std::all_of(hosts.begin(), hosts.end(), [&](const auto& h) { return h == hosts.front(); });
    o.listen = one_host ? "127.0.0.1:0" : "0.0.0.0:0";
  }
  try {
    if (o.serve) return offload::app::serve(*rt, o, *kernels);
    if (o.stop) {
      auto link = offload::app::connect_service(*rt, o, offload::app::service_request::stop);
      offload::app::disconnect_service(link);
      if (rt->rank() == 0) std::printf("offload-run: asked the receiver service to stop\n");
      return 0;
    }
    if (o.connect) {
      offload::app::service_link link;
      try {
        link = offload::app::connect_service(*rt, o, offload::app::service_request::run);
      } catch (const offload::app::service_not_found& e) {
        // As a transmitter whose receivers do not answer: the job runs on its CPUs.
        if (o.require_receivers) throw;
        if (rt->rank() == 0)
          spdlog::warn(
              "{}; starting without receivers: every request runs on this job's CPUs (no_receiver). "
              "A service that comes up later is not used by this job (MPI_Comm_connect joins a whole job "
              "once; --transport grpc reconnects); --require-receivers makes this an error",
              e.what());
        return run(*rt, o, *kernels, std::move(w), nullptr);
      }
      o.remote_receivers = link.receivers;
      const int status = run(*rt, o, *kernels, std::move(w), &link);
      offload::app::disconnect_service(link);
      return status;
    }
    return run(*rt, o, *kernels, std::move(w), nullptr);
  } catch (const std::exception& e) {
    // Other ranks may be waiting on this one: end the whole job rather than hang it.
    spdlog::critical("{}", e.what());
    rt->abort(1);
  }
}
