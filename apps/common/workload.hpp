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
  std::string kernel;      ///< registered kernel it calls (a model module: the model's name)
  std::uint64_t size = 0;  ///< kernel input size (see input_params::size); a model module: items, drawn per event
  std::uint64_t work = 0;  ///< kernel work knob (synthetic: iterations per element; a model: per item)
  /// When > 0: the module's CPU cost in ms per event at time scale 1; `work` is derived from it.
  double cpu_ms = 0;
  /// A model module (offload/model.hpp): the model stands in for an ML model with
  /// `features` f32 inputs and `outputs` scores per item, and `items_mean` items per event,
  /// fixed (the mean must be whole) or Poisson-distributed.
  bool model = false;
  std::uint32_t features = 0;
  std::uint32_t outputs = 0;
  double items_mean = 0;
  bool items_poisson = false;
  double input_mb = 0;  ///< as the workload file gives it (features are derived from it)
  std::string source;

  /// The items of event `seed` (the mean when fixed, a Poisson draw when not); `size` for a kernel module.
  std::uint64_t items_for(std::uint64_t seed) const;
};

struct workload {
  std::string name;
  std::string path;  ///< the file it was read from ("built in" for single)
  std::string source;
  double before_ms = 0;  ///< CPU work per event before the modules, at time scale 1
  double after_ms = 0;   ///< and after them
  /// Coefficient of variation of each event's CPU work before and after the modules (a
  /// log-normal factor of mean 1, drawn per event from its seed); 0: every event the same.
  double cpu_cv = 0;
  std::vector<module_spec> modules;
  // Derived by resolve():
  std::uint64_t before_iterations = 0;
  std::uint64_t after_iterations = 0;
};

/// The workloads one can name: "single" and every workloads/NAME.json found (find_data_file).
std::vector<std::string> workload_names();

/// The file `dir`/`name`.json in the source tree's or the installation's data folder, or
/// `name` itself when it names a file (has a '/' or ends in .json). Throws
/// std::invalid_argument listing what exists when there is none.
std::string find_data_file(const std::string& dir, const std::string& name);

/// `name`: "single", one module of `kernel` (one of `kernels`) with `size` and `work` (the
/// kernel's default_size() when 0); or a workload file, by name (workloads/NAME.json) or path
/// (parse_workload). Throws std::invalid_argument for an unknown name or kernel.
workload make_workload(const std::string& name, const kernel_registry& kernels, const std::string& kernel,
                       std::uint64_t size, std::uint64_t work);

/// A workload file (docs/offload-run.md has the format). Throws std::invalid_argument naming
/// `origin` and the field for a missing or mistyped field, a negative or non-finite figure, a
/// module with both or neither of "model" and "kernel", or a repeated module or model name.
workload parse_workload(const std::string& text, const std::string& origin);

/// Milliseconds of CPU per event at time scale 1: before, after and every module's cost.
double cpu_ms_per_event(const workload& w);
/// The factor (mean 1 over events) that event `seed`'s CPU work before and after the modules
/// is multiplied by: 1 when `w.cpu_cv` is 0.
double cpu_factor(const workload& w, std::uint64_t seed);

/// The model stand-ins of `w`'s model modules (offload/model.hpp), to add to the kernel
/// registry; with `hold_cpu` their CPU cost is held, not computed (--cpu-work emulated).
kernel_registry model_kernels(const workload& w, bool hold_cpu);

/// Nanoseconds of CPU time one iteration of the calibrated loop (synthetic's acc = acc/2 + x)
/// takes on this core: the median of seven runs of about 3 ms each, in thread CPU time.
double measure_ns_per_iteration();

/// Turns every millisecond cost into iterations: costs are multiplied by `time_scale`, and
/// one iteration takes `ns_per_iteration`. Modules with cpu_ms > 0 must use the synthetic
/// kernel (their size is in elements) or be model modules (per item); every module gets at
/// least one iteration per element or item.
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
/// Returns the result so that callers can fold it into the event's output digest. With
/// `hold` (--cpu-work emulated, where an iteration is a nanosecond) the calling thread is held
/// `iterations` ns instead, and the result is a hash of `seed` (the same in every emulated run).
double cpu_work(std::uint64_t seed, std::uint64_t iterations, bool hold = false);

}  // namespace offload::app
