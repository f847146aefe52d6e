#include <offload/log.hpp>

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <array>
#include <cstdlib>
#include <mutex>

#include <unistd.h>

namespace offload {

namespace {

/// True when an MPI launcher or Slurm started this process (their relays hide where its
/// stderr ends up).
bool launched() {
  constexpr std::array names{"OMPI_COMM_WORLD_SIZE", "PMI_RANK", "PMIX_RANK", "SLURM_PROCID", "MPI_LOCALRANKID"};
  for (const char* n : names)
    if (std::getenv(n) != nullptr) return true;
  return false;
}

std::shared_ptr<spdlog::logger> make_default() {
  if (auto registered = spdlog::get(logger_name)) return registered;
  const auto mode = isatty(STDERR_FILENO) && !launched() ? spdlog::color_mode::automatic : spdlog::color_mode::never;
  auto l = std::make_shared<spdlog::logger>(logger_name, std::make_shared<spdlog::sinks::stderr_color_sink_mt>(mode));
  try {
    spdlog::register_logger(l);  // so that spdlog::get("offload") and spdlog::set_level reach it
  } catch (const spdlog::spdlog_ex&) {
    if (auto raced = spdlog::get(logger_name)) return raced;  // registered meanwhile by another thread
  }
  return l;
}

std::mutex current_mutex;
std::shared_ptr<spdlog::logger> current;  // guarded by current_mutex; null until first use

}  // namespace

std::shared_ptr<spdlog::logger> logger() {
  std::lock_guard lock(current_mutex);
  if (!current) current = make_default();
  return current;
}

void set_logger(std::shared_ptr<spdlog::logger> l) {
  std::lock_guard lock(current_mutex);
  current = l ? std::move(l) : make_default();
}

}  // namespace offload
