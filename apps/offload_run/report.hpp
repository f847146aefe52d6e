#pragma once
// What rank 0 makes of a run: one JSON document (metadata, configuration, every rank's
// figures, per-module and per-stage statistics, the totals). report_output.hpp prints it.

#include "apps/common/calibration.hpp"
#include "apps/common/options.hpp"
#include "apps/common/workload.hpp"
#include "event_loop.hpp"

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace offload::app {

using json = nlohmann::ordered_json;

/// The request stages, as keys of the report and as printed.
inline constexpr const char* stage_keys[] = {"tx_queue", "net_out", "rx_queue", "kernel", "net_back", "round_trip"};
inline constexpr const char* stage_names[] = {"transmitter queue", "network out", "receiver queue", "kernel",
                                              "network back",      "round trip"};

/// a / b, 0 when b is not positive.
double ratio(double a, double b);
/// "real", or "EMULATED (<device>, <profile file>, times x <time scale>)" for --backend emulated.
std::string device_label(const options& o);
/// A count of the report (0 when `j` has no `key`).
std::uint64_t u64(const json& j, const char* key);

/// Linear-interpolated quantile `q` of `v` (0 when empty).
double percentile(std::vector<double> v, double q);

/// Metadata of the job: argv, date, build (git commit and dirty flag, compiler, CUDA),
/// the MPI library, rank 0's OMPI_* and UCX_* environment.
json job_metadata(const options& o, const std::string& mpi_library);

/// Everything rank 0 knows about the run. `ranks[r]` is what rank r reported (see main.cpp);
/// `event_times[r]` its event times and `requests[r]` its request records.
json make_report(const options& o, const workload& w, double ns_per_iteration, json metadata, json ranks,
                 const std::vector<std::vector<double>>& event_times,
                 const std::vector<std::vector<request_record>>& requests);

/// The library's costs this run measured (apps/common/calibration.hpp), from `report` (a
/// remote run's make_report) and its request records: each module's stage medians and mean
/// request and reply bytes, the progress threads' CPU per request. Throws std::invalid_argument
/// when the run had no remote request to learn from.
std::string calibration_file_text(const options& o, const workload& w, const json& report,
                                  const std::vector<std::vector<request_record>>& requests);

}  // namespace offload::app
