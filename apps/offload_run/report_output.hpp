#pragma once
// The report's three outputs: the human summary, the CSV row, the JSON file.

#include "report.hpp"

#include <string>

namespace offload::app {

/// The tables printed at the end of a run.
std::string human_summary(const json& report);
/// Appends report["total"] as one CSV row; writes the header first when the file is new or
/// empty. Throws std::runtime_error when the file's header differs (another kind of table).
void append_csv(const std::string& path, const json& report);
void write_json(const std::string& path, const json& report);

}  // namespace offload::app
