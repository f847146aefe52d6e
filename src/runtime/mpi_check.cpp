#include "mpi_check.hpp"

#include <offload/log.hpp>

#include <string>

namespace offload::detail {

namespace {
std::string describe(int code, const char* call, const char* file, int line) {
  int rank = -1, initialized = 0, finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  if (initialized && !finalized) MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  return std::string(call) + " failed at " + file + ":" + std::to_string(line) + " on rank " + std::to_string(rank) +
         ": " + mpi_error_string(code);
}
}  // namespace

std::string mpi_error_string(int code) {
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  if (MPI_Error_string(code, text, &len) != MPI_SUCCESS) return "MPI error " + std::to_string(code);
  return std::string(text, static_cast<std::size_t>(len)) + " (code " + std::to_string(code) + ")";
}

void throw_mpi_error(int code, const char* call, const char* file, int line) {
  throw mpi_error(describe(code, call, file, line));
}

void log_mpi_error(int code, const char* call, const char* file, int line) noexcept {
  try {
    offload::logger()->error("{}", describe(code, call, file, line));
  } catch (...) {
  }
}

}  // namespace offload::detail
