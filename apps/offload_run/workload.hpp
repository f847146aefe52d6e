#pragma once
// What one event of offload-run does: CPU work before its offloaded modules, the modules
// (each one kernel request), CPU work after. Costs given in milliseconds are turned into
// iteration counts of one calibrated arithmetic loop, so the work is real computation whose
// cost scales with --time-scale and whose results are the same in every mode.

#include <offload/kernel.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace offload::app {

/// One offloaded module: a kernel request per event.
struct module_spec {
  std::string name;    ///< e.g. "DeepTau"
  std::string kernel;  ///< registered kernel it calls
  std::uint64_t size = 0;  ///< kernel input size (see input_params::size)
  std::uint64_t work = 0;  ///< kernel work knob (synthetic: iterations per element)
  /// When > 0: the module's CPU cost in ms at time scale 1; `work` is derived from it.
  double cpu_ms = 0;
};

struct workload {
  std::string name;
  double before_ms = 0;  ///< CPU work per event before the modules, at time scale 1
  double after_ms = 0;   ///< and after them
  std::vector<module_spec> modules;
  // Derived by resolve():
  std::uint64_t before_iterations = 0;
  std::uint64_t after_iterations = 0;
};

/// The names of the presets, for --help and flag checks.
std::vector<std::string> workload_names();

/// Preset `name`. "single": one module of `kernel` with `size` and `work` (the kernel's
/// default size when 0). "miniaod": the CMS MiniAOD demonstrator (see the README).
/// Throws std::invalid_argument for an unknown name.
workload make_workload(const std::string& name, const std::string& kernel, std::uint64_t size, std::uint64_t work);

/// The default input size of a kernel in the "single" workload.
std::uint64_t default_size(const std::string& kernel);

/// Nanoseconds of CPU time one iteration of the calibrated loop (synthetic's acc = acc/2 + x)
/// takes on this core: the median of seven runs of about 3 ms each, in thread CPU time.
double measure_ns_per_iteration();

/// Turns every millisecond cost into iterations: costs are multiplied by `time_scale`, and
/// one iteration takes `ns_per_iteration`. Modules with cpu_ms > 0 must use the synthetic
/// kernel (their size is in elements); every module gets at least one iteration per element.
void resolve(workload& w, double time_scale, double ns_per_iteration);

/// Real CPU work: `iterations` steps of the calibrated loop on values derived from `seed`.
/// Returns the result so that callers can fold it into the event's output digest.
double cpu_work(std::uint64_t seed, std::uint64_t iterations);

}  // namespace offload::app
