#pragma once
// OFFLOAD_MPI_CHECK(call): throws offload::mpi_error with the call, file, line, rank and MPI's
// text when `call` does not return MPI_SUCCESS. OFFLOAD_MPI_CHECK_NOEXCEPT logs instead (for
// destructors and shutdown paths).

#include <offload/runtime.hpp>

#include <mpi.h>

namespace offload::detail {

[[noreturn]] void throw_mpi_error(int code, const char* call, const char* file, int line);
void log_mpi_error(int code, const char* call, const char* file, int line) noexcept;
std::string mpi_error_string(int code);

}  // namespace offload::detail

#define OFFLOAD_MPI_CHECK(call)                                                       \
  do {                                                                                \
    if (const int offload_mpi_rc_ = (call); offload_mpi_rc_ != MPI_SUCCESS)           \
      ::offload::detail::throw_mpi_error(offload_mpi_rc_, #call, __FILE__, __LINE__); \
  } while (false)

#define OFFLOAD_MPI_CHECK_NOEXCEPT(call)                                            \
  do {                                                                              \
    if (const int offload_mpi_rc_ = (call); offload_mpi_rc_ != MPI_SUCCESS)         \
      ::offload::detail::log_mpi_error(offload_mpi_rc_, #call, __FILE__, __LINE__); \
  } while (false)
