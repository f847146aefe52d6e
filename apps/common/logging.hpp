#pragma once
// The apps' logging: spdlog (the library's and the app's messages) to stderr, at --log-level,
// so that stdout holds only what the app reports (summaries, tables).

#include <offload/log.hpp>

#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>

#include <string>

namespace offload::app {

/// Adds --log-level (trace, debug, info, warn, error, off) to `app`, into `level`.
inline void add_log_level(CLI::App& app, std::string& level) {
  app.add_option("--log-level", level,
                 "messages to stderr at this level and above: trace, debug, info, warn, error, off")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "off"}))
      ->capture_default_str();
}

/// Sends every spdlog message (the library's and the app's) to the library's logger from now
/// on (offload/log.hpp: stderr, coloured only on a terminal outside mpirun and Slurm), at
/// `level` and above, each line starting with the time and `who` ("offload-serve", "rank 3").
inline void setup_logging(const std::string& level, const std::string& who) {
  spdlog::set_default_logger(offload::logger());
  spdlog::set_level(spdlog::level::from_str(level));
  spdlog::set_pattern("[%H:%M:%S.%e] [" + who + "] [%l] %v");
}

}  // namespace offload::app
