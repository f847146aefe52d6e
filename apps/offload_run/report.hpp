#pragma once
// What rank 0 makes of a run: one JSON document (metadata, configuration, every rank's
// figures, per-module and per-stage statistics, the totals), and from it the human summary,
// the CSV row and the JSON file.

#include "apps/common/options.hpp"
#include "apps/common/workload.hpp"
#include "event_loop.hpp"

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace offload::app {

using json = nlohmann::ordered_json;

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

/// The tables printed at the end of a run.
std::string human_summary(const json& report);
/// Appends report["total"] as one CSV row; writes the header first when the file is new or
/// empty. Throws std::runtime_error when the file's header differs (another kind of table).
void append_csv(const std::string& path, const json& report);
void write_json(const std::string& path, const json& report);

}  // namespace offload::app
