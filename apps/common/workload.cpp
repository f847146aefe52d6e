#include "workload.hpp"

#include "kernels/kernel_math.hpp"

#include <algorithm>
#include <cmath>
#include <ctime>
#include <stdexcept>

namespace offload::app {

std::vector<std::string> workload_names() {
  return {"single", "miniaod"};
}

workload make_workload(const std::string& name, const kernel_registry& kernels, const std::string& kernel,
                       std::uint64_t size, std::uint64_t work) {
  if (name == "single") {
    const offload::kernel* k = kernels.subset({kernel}).find(kernel);  // throws naming the known ones
    workload w{"single", 0, 0, {{kernel, kernel, size ? size : k->default_size(), work, 0}}};
    return w;
  }
  if (name == "miniaod") {
    // The CMS MiniAOD demonstrator run with remote inference: about 905 ms of other CPU work
    // per event (split evenly before and after here) and four models. Inputs are f64
    // elements of the synthetic kernel: 0.04, 0.003, 0.33 and 1.18 MB per event; CPU costs
    // 42, 11, 13 and 21 ms (88 ms, 8.8% of the event).
    auto elements = [](double mb) { return std::uint64_t(std::llround(mb * 1e6 / 8.0)); };
    workload w{"miniaod", 452.5, 452.5, {}};
    w.modules = {{"PN-AK4", "synthetic", elements(0.04), 0, 42},
                 {"PN-AK8", "synthetic", elements(0.003), 0, 11},
                 {"DeepMET", "synthetic", elements(0.33), 0, 13},
                 {"DeepTau", "synthetic", elements(1.18), 0, 21}};
    return w;
  }
  std::string known;
  for (const auto& n : workload_names()) known += (known.empty() ? "" : ", ") + n;
  throw std::invalid_argument("unknown workload '" + name + "' (known: " + known + ")");
}

namespace {
/// CPU time of the calling thread: what the calibration counts, so that ranks sharing cores
/// (or spinning in MPI while one rank calibrates) do not inflate it.
double thread_cpu_ns() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return 1e9 * double(ts.tv_sec) + double(ts.tv_nsec);
}
}  // namespace

double measure_ns_per_iteration() {
  constexpr int elements = 64;
  constexpr std::int64_t iterations = 20000;  // about 3 ms per run
  std::vector<double> times;
  double sink = 0;
  for (int rep = 0; rep < 7; ++rep) {
    const double t0 = thread_cpu_ns();
    for (int e = 0; e < elements; ++e) sink += kernels::synthetic_element(1.0 / double(e + rep + 2), iterations);
    times.push_back((thread_cpu_ns() - t0) / (double(elements) * double(iterations)));
  }
  if (!std::isfinite(sink)) throw std::logic_error("calibration loop diverged");
  std::nth_element(times.begin(), times.begin() + 3, times.end());
  return times[3];
}

namespace {
std::uint64_t iterations_for(double ms, double time_scale, double ns_per_iteration) {
  return std::uint64_t(std::llround(std::max(0.0, ms) * time_scale * 1e6 / ns_per_iteration));
}
}  // namespace

void resolve(workload& w, double time_scale, double ns_per_iteration) {
  if (!(ns_per_iteration > 0)) throw std::invalid_argument("ns per iteration must be positive");
  w.before_iterations = iterations_for(w.before_ms, time_scale, ns_per_iteration);
  w.after_iterations = iterations_for(w.after_ms, time_scale, ns_per_iteration);
  for (auto& m : w.modules) {
    if (m.cpu_ms <= 0) continue;
    if (m.kernel != "synthetic")
      throw std::invalid_argument("module " + m.name + ": a CPU cost in ms needs the synthetic kernel, not " +
                                  m.kernel);
    if (m.size == 0) throw std::invalid_argument("module " + m.name + " has no elements");
    m.work = std::max<std::uint64_t>(1, iterations_for(m.cpu_ms, time_scale, ns_per_iteration) / m.size);
  }
}

void refine_modules(workload& w, double time_scale, const std::vector<const kernel*>& kernels) {
  for (std::size_t i = 0; i < w.modules.size(); ++i) {
    auto& m = w.modules[i];
    if (m.cpu_ms <= 0) continue;
    const double target_ns = m.cpu_ms * time_scale * 1e6;
    for (int round = 0; round < 4; ++round) {
      const auto inputs = kernels.at(i)->make_inputs({0x5eed + std::uint64_t(round), m.size, m.work});
      std::vector<double> t;
      for (int rep = 0; rep < 3; ++rep) {
        const double t0 = thread_cpu_ns();
        run_cpu(*kernels[i], product_views(inputs), {message_kind::reply});
        t.push_back(thread_cpu_ns() - t0);
      }
      std::sort(t.begin(), t.end());
      const double measured = t[1];
      if (std::abs(measured - target_ns) <= 0.05 * target_ns || (m.work == 1 && measured > target_ns)) break;
      m.work = std::max<std::uint64_t>(1, std::uint64_t(std::llround(double(m.work) * target_ns / measured)));
    }
  }
}

std::vector<std::uint64_t> derived_counts(const workload& w) {
  std::vector<std::uint64_t> out{w.before_iterations, w.after_iterations};
  for (const auto& m : w.modules) out.push_back(m.work);
  return out;
}

void set_derived_counts(workload& w, const std::vector<std::uint64_t>& counts) {
  if (counts.size() != 2 + w.modules.size()) throw std::logic_error("derived counts do not match the workload");
  w.before_iterations = counts[0];
  w.after_iterations = counts[1];
  for (std::size_t i = 0; i < w.modules.size(); ++i) w.modules[i].work = counts[2 + i];
}

double cpu_work(std::uint64_t seed, std::uint64_t iterations) {
  // Eight independent chains of the calibrated loop, the remainder on the first.
  kernels::splitmix64 rng{seed};
  constexpr std::uint64_t lanes = 8;
  double sum = 0;
  for (std::uint64_t l = 0; l < lanes; ++l) {
    const std::uint64_t n = iterations / lanes + (l == 0 ? iterations % lanes : 0);
    sum += kernels::synthetic_element(rng.uniform(), std::int64_t(n));
  }
  return sum;
}

}  // namespace offload::app
