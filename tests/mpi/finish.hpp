#pragma once
// The end of every MPI test program: sum the failed checks of all ranks.
#include <offload/runtime.hpp>

#include "check.hpp"

namespace offload_test {

/// Rank 0 prints the verdict; returns the exit code for every rank.
inline int finish(offload::runtime& rt) {
  int mine = failures, total = 0;
  rt.call([&] { MPI_Allreduce(&mine, &total, 1, MPI_INT, MPI_SUM, rt.comm()); });
  if (rt.rank() == 0) std::printf("%s: %d failed checks\n", total == 0 ? "PASS" : "FAIL", total);
  return total == 0 ? 0 : 1;
}

}  // namespace offload_test
