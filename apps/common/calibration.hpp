#pragma once
// The library's own costs, as offload-sim models them, measured by a short offload-run
// (`--calibrate FILE`) instead of typed by hand: per request and per byte on the way out and
// back (what the stages hold beyond any injected latency), the transmitter's queue, and the
// share of a core the transmitter's progress thread keeps busy.

#include <string>
#include <vector>

namespace offload::app {

struct library_costs {
  std::string source;          ///< what measured them (command, host, date, commit)
  double tx_queue_s = 0;       ///< submit to send starting (the transmitter queue, p50)
  double out_fixed_s = 0;      ///< network out beyond the injected one-way latency: fixed part
  double out_s_per_byte = 0;   ///< and per request byte
  double back_fixed_s = 0;     ///< network back beyond the injected latency: fixed part
  double back_s_per_byte = 0;  ///< and per reply byte
  /// What the receiver adds to each batch beyond the device's time (hand-offs, wake-ups),
  /// measured against an emulated device: the kernel stage minus the profile's batch time.
  double batch_overhead_s = 0;
  /// Cores a transmitter's progress thread keeps busy (its CPU seconds over the run's wall
  /// seconds, polling included): taken from the job's cores, which its workers share.
  double tx_progress_cores = 0;
};

/// One module's measured point: its mean request and reply bytes and its stage medians.
struct calibration_point {
  std::string module;
  double bytes_in = 0, bytes_out = 0;
  double tx_queue_s = 0, net_out_s = 0, net_back_s = 0, kernel_s = 0;
  double device_s = 0;  ///< the emulated device's time for a batch of the mean items; 0: not emulated
  double requests = 0;
};

/// Fits the costs: the transmitter queue is the request-weighted mean of the modules'
/// medians; network out (back) minus `one_way_latency_s` against request (reply) bytes by
/// least squares over the modules, weighted by requests; the batch overhead is the
/// request-weighted mean of kernel minus device time over the points with a device time. The slope is 0 (the fixed part
/// the weighted mean) when the sizes span less than 64 KiB, too little to tell bytes from noise, or when it comes out
/// negative; negative fixed parts are clamped to 0.
library_costs fit_costs(const std::vector<calibration_point>& points, double one_way_latency_s,
                        double tx_progress_cores, std::string source);

/// The calibration file (JSON: the costs, in ms and ms/MB, with the points they came from and,
/// for the reader, `extra` figures the model does not use).
std::string calibration_json(const library_costs& c, const std::vector<calibration_point>& points,
                             const std::vector<std::pair<std::string, double>>& extra = {});
/// Reads one; throws std::invalid_argument naming `origin` and the field for a missing,
/// mistyped, negative or non-finite figure.
library_costs parse_calibration(const std::string& text, const std::string& origin);
/// Reads the file `path`.
library_costs load_calibration(const std::string& path);

}  // namespace offload::app
