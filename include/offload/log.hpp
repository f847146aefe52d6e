#pragma once
/// \file
/// Where the library's messages go. Every message of the library (warnings about receivers,
/// fallbacks, bad peers; errors that end a session) goes to one spdlog logger named "offload".
///
/// By default that logger writes to stderr at level info. Lines are coloured only when stderr
/// is a terminal and no MPI launcher or Slurm started the process (mpirun and srun relay a
/// rank's stderr through a pipe or a pseudo-terminal, so the rank cannot see whether the
/// relayed lines end in a file). An application that registered its own logger under that
/// name before the library's first message gets it used as is.
///
///     offload::logger()->set_level(spdlog::level::warn);         // fewer messages
///     offload::set_logger(spdlog::get("cmsRun"));                 // into the framework's logger
///     offload::set_logger(spdlog::basic_logger_mt("offload", "offload.log"));  // to a file

#include <spdlog/logger.h>

#include <memory>

namespace offload {

/// The name of the library's default logger (and of one an application registers for it).
inline constexpr const char* logger_name = "offload";

/// The logger the library's messages go to now (never null). Thread-safe.
std::shared_ptr<spdlog::logger> logger();

/// From now on the library's messages go to `l`; nullptr restores the default (above).
/// Thread-safe: messages being written meanwhile go to one logger or the other.
void set_logger(std::shared_ptr<spdlog::logger> l);

}  // namespace offload
