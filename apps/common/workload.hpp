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
  std::string name;        ///< e.g. "DeepTau"
  std::string kernel;      ///< registered kernel it calls
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

/// Preset `name`. "single": one module of `kernel` (one of `kernels`) with `size` and `work`
/// (the kernel's default_size() when 0). "miniaod": the CMS MiniAOD demonstrator (see
/// docs/offload-run.md). Throws std::invalid_argument for an unknown name or kernel.
workload make_workload(const std::string& name, const kernel_registry& kernels, const std::string& kernel,
                       std::uint64_t size, std::uint64_t work);

/// Nanoseconds of CPU time one iteration of the calibrated loop (synthetic's acc = acc/2 + x)
/// takes on this core: the median of seven runs of about 3 ms each, in thread CPU time.
double measure_ns_per_iteration();

/// Turns every millisecond cost into iterations: costs are multiplied by `time_scale`, and
/// one iteration takes `ns_per_iteration`. Modules with cpu_ms > 0 must use the synthetic
/// kernel (their size is in elements); every module gets at least one iteration per element.
void resolve(workload& w, double time_scale, double ns_per_iteration);

/// Measures each module with a CPU cost (`kernels[i]` is module i's kernel): runs it on
/// generated inputs in thread CPU time and rescales its iterations until it costs its ms
/// times `time_scale` (within 5%, at most four rounds, never below one iteration per
/// element). Needed because the per-iteration cost depends on the chain length: short
/// chains over many elements overlap in the core and run faster than the calibration loop.
void refine_modules(workload& w, double time_scale, const std::vector<const kernel*>& kernels);

/// The derived counts (CPU work before and after, each module's work) as one vector, and
/// back: what the first transmitter sends to every rank.
std::vector<std::uint64_t> derived_counts(const workload& w);
void set_derived_counts(workload& w, const std::vector<std::uint64_t>& counts);

/// Real CPU work: `iterations` steps of the calibrated loop on values derived from `seed`.
/// Returns the result so that callers can fold it into the event's output digest.
double cpu_work(std::uint64_t seed, std::uint64_t iterations);

}  // namespace offload::app
