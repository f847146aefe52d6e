#include "workload.hpp"

#include "kernels/kernel_math.hpp"

#include <offload/model.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace offload::app {

namespace {

using json = nlohmann::json;

/// The folders data files are looked for in: the installation's, then the source tree's.
std::vector<std::filesystem::path> data_dirs() {
  return {OFFLOAD_INSTALL_DATA_DIR, OFFLOAD_SOURCE_DATA_DIR};
}

/// Reads a workload file's fields, naming the file and field in every error.
struct field_reader {
  std::string origin;
  [[noreturn]] void fail(const std::string& field, const std::string& what) const {
    throw std::invalid_argument("workload " + origin + ": " + field + ": " + what);
  }
  bool has(const json& j, const std::string& key) const { return j.is_object() && j.contains(key); }
  const json& at(const json& j, const std::string& field, const std::string& key) const {
    if (!has(j, key)) fail(field.empty() ? key : field + "." + key, "missing");
    return j.at(key);
  }
  std::string text(const json& j, const std::string& field, const std::string& key) const {
    const auto& v = at(j, field, key);
    if (!v.is_string() || v.get<std::string>().empty())
      fail(field.empty() ? key : field + "." + key, "must be a non-empty string");
    return v.get<std::string>();
  }
  double number(const json& j, const std::string& field, const std::string& key, bool positive) const {
    const auto& v = at(j, field, key);
    const std::string name = field.empty() ? key : field + "." + key;
    if (!v.is_number()) fail(name, "must be a number, is " + v.dump());
    const double x = v.get<double>();
    if (!std::isfinite(x) || x < 0 || (positive && x == 0))
      fail(name, "is " + v.dump() + "; it must be " + (positive ? "positive" : "zero or positive"));
    return x;
  }
};

}  // namespace

std::uint64_t module_spec::items_for(std::uint64_t seed) const {
  if (!model) return size;
  if (!items_poisson) return std::uint64_t(std::llround(items_mean));
  // Poisson by inversion of the CDF, from one uniform of the event's seed (means up to a few
  // hundred; beyond, a normal approximation would be needed and files are refused).
  kernels::splitmix64 rng{seed ^ 0x17e55ull};
  const double u = rng.uniform();
  double p = std::exp(-items_mean), cdf = p;
  std::uint64_t k = 0;
  while (u > cdf && k < 10000) {
    ++k;
    p *= items_mean / double(k);
    cdf += p;
  }
  return k;
}

std::string find_data_file(const std::string& dir, const std::string& name) {
  const bool is_path =
      name.find('/') != std::string::npos || (name.size() > 5 && name.compare(name.size() - 5, 5, ".json") == 0);
  if (is_path) {
    if (!std::filesystem::is_regular_file(name)) throw std::invalid_argument(dir + " file " + name + " does not exist");
    return name;
  }
  std::string known;
  for (const auto& d : data_dirs()) {
    const auto path = d / dir / (name + ".json");
    if (std::filesystem::is_regular_file(path)) return path.string();
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(d / dir, ec))
      if (e.path().extension() == ".json") known += (known.empty() ? "" : ", ") + e.path().stem().string();
  }
  throw std::invalid_argument("no " + dir + " called '" + name + "' (known: " + (known.empty() ? "none" : known) +
                              "; or give a file path)");
}

std::vector<std::string> workload_names() {
  std::vector<std::string> out{"single"};
  for (const auto& d : data_dirs()) {
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(d / "workloads", ec))
      if (e.path().extension() == ".json" && std::find(out.begin(), out.end(), e.path().stem().string()) == out.end())
        out.push_back(e.path().stem().string());
  }
  return out;
}

workload parse_workload(const std::string& text, const std::string& origin) {
  const field_reader r{origin};
  json j;
  try {
    j = json::parse(text);
  } catch (const json::parse_error& e) {
    throw std::invalid_argument("workload " + origin + ": not valid JSON: " + e.what());
  }
  if (!j.is_object()) r.fail("(top level)", "must be a JSON object");
  workload w;
  w.path = origin;
  w.name = r.text(j, "", "name");
  w.source = r.text(j, "", "source");
  w.before_ms = r.number(j, "", "cpu_ms_before", false);
  w.after_ms = r.number(j, "", "cpu_ms_after", false);
  w.cpu_cv = r.has(j, "cpu_ms_cv") ? r.number(j, "", "cpu_ms_cv", false) : 0;
  if (w.cpu_cv > 3) r.fail("cpu_ms_cv", "is above 3");
  const auto& mods = r.at(j, "", "modules");
  if (!mods.is_array() || mods.empty()) r.fail("modules", "must be a non-empty array");
  for (std::size_t i = 0; i < mods.size(); ++i) {
    const auto& m = mods[i];
    const std::string f = "modules[" + std::to_string(i) + "]";
    module_spec s;
    s.name = r.text(m, f, "name");
    s.cpu_ms = r.has(m, "cpu_ms") ? r.number(m, f, "cpu_ms", false) : 0;
    if (r.has(m, "model") == r.has(m, "kernel")) r.fail(f, "give one of \"model\" (a model stand-in) and \"kernel\"");
    if (r.has(m, "model")) {
      s.model = true;
      s.kernel = r.text(m, f, "model");
      s.source = r.text(m, f, "source");
      s.input_mb = r.number(m, f, "input_mb", true);
      const auto& items = r.at(m, f, "items");
      s.items_mean = r.number(items, f + ".items", "mean", true);
      if (s.items_mean > 500) r.fail(f + ".items.mean", "is above 500 items per event");
      const std::string dist = r.text(items, f + ".items", "distribution");
      if (dist != "fixed" && dist != "poisson")
        r.fail(f + ".items.distribution", "is '" + dist + "'; it must be fixed or poisson");
      s.items_poisson = dist == "poisson";
      if (!s.items_poisson && s.items_mean != std::floor(s.items_mean))
        r.fail(f + ".items.mean", "must be a whole number with distribution fixed");
      const double outputs = r.number(m, f, "outputs_per_item", true);
      if (outputs != std::floor(outputs) || outputs > 1e6) r.fail(f + ".outputs_per_item", "must be a whole number");
      s.outputs = std::uint32_t(outputs);
      const double features = std::round(s.input_mb * 1e6 / 4.0 / s.items_mean);
      if (features < 1 || features > 1e8)
        r.fail(f + ".input_mb", "gives " + std::to_string(features) + " f32 features per item; 1..1e8 needed");
      s.features = std::uint32_t(features);
    } else {
      s.kernel = r.text(m, f, "kernel");
      s.size = std::uint64_t(r.number(m, f, "size", true));
      s.work = r.has(m, "work") ? std::uint64_t(r.number(m, f, "work", false)) : 0;
    }
    for (const auto& other : w.modules) {
      if (other.name == s.name) r.fail(f + ".name", "'" + s.name + "' is the name of an earlier module too");
      if (s.model && other.kernel == s.kernel)
        r.fail(f + ".model", "'" + s.kernel + "' is an earlier module's model too; give each module its own");
    }
    w.modules.push_back(std::move(s));
  }
  return w;
}

double cpu_ms_per_event(const workload& w) {
  double ms = w.before_ms + w.after_ms;
  for (const auto& m : w.modules) ms += m.cpu_ms;
  return ms;
}

double cpu_factor(const workload& w, std::uint64_t seed) {
  if (w.cpu_cv <= 0) return 1.0;
  // Log-normal of mean 1: exp(sigma z - sigma^2 / 2), z standard normal (Box-Muller).
  kernels::splitmix64 rng{seed ^ 0xc0ffeeull};
  const double u1 = std::max(rng.uniform(), 1e-300), u2 = rng.uniform();
  const double z = std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * 3.14159265358979323846 * u2);
  const double sigma = std::sqrt(std::log(1.0 + w.cpu_cv * w.cpu_cv));
  return std::exp(sigma * z - 0.5 * sigma * sigma);
}

kernel_registry model_kernels(const workload& w, bool hold_cpu) {
  kernel_registry out;
  for (const auto& m : w.modules)
    if (m.model) out.add(make_model_kernel({m.kernel, m.features, m.outputs, hold_cpu}), "workload " + w.path);
  return out;
}

workload make_workload(const std::string& name, const kernel_registry& kernels, const std::string& kernel,
                       std::uint64_t size, std::uint64_t work) {
  if (name == "single") {
    const offload::kernel* k = kernels.subset({kernel}).find(kernel);  // throws naming the known ones
    workload w;
    w.name = "single";
    w.path = "built in";
    w.source = "--kernel " + kernel;
    module_spec m;
    m.name = m.kernel = kernel;
    m.size = size ? size : k->default_size();
    m.work = work;
    w.modules = {m};
    return w;
  }
  const std::string path = find_data_file("workloads", name);
  std::ifstream in(path);
  if (!in) throw std::invalid_argument("workload " + path + ": cannot be read");
  std::stringstream text;
  text << in.rdbuf();
  return parse_workload(text.str(), path);
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
    if (!m.model && m.kernel != "synthetic")
      throw std::invalid_argument("module " + m.name +
                                  ": a CPU cost in ms needs the synthetic kernel or a model, not " + m.kernel);
    const double units = m.model ? m.items_mean : double(m.size);
    if (!(units > 0)) throw std::invalid_argument("module " + m.name + " has no elements");
    m.work = std::max<std::uint64_t>(
        1, std::uint64_t(std::llround(double(iterations_for(m.cpu_ms, time_scale, ns_per_iteration)) / units)));
  }
}

void refine_modules(workload& w, double time_scale, const std::vector<const kernel*>& kernels) {
  for (std::size_t i = 0; i < w.modules.size(); ++i) {
    auto& m = w.modules[i];
    if (m.cpu_ms <= 0) continue;
    // Measured on a probe of whole items (a model's mean may be fractional), scaled to it.
    const std::uint64_t probe =
        m.model ? std::max<std::uint64_t>(1, std::uint64_t(std::llround(m.items_mean))) : m.size;
    const double target_ns = m.cpu_ms * time_scale * 1e6 * (m.model ? double(probe) / m.items_mean : 1.0);
    for (int round = 0; round < 4; ++round) {
      const auto inputs = kernels.at(i)->make_inputs({0x5eed + std::uint64_t(round), probe, m.work});
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

double cpu_work(std::uint64_t seed, std::uint64_t iterations, bool hold) {
  if (hold) {
    std::this_thread::sleep_for(std::chrono::nanoseconds(iterations));
    return kernels::splitmix64{seed}.uniform();
  }
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
