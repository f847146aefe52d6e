#pragma once
// The end of every MPI test program: sum the failed checks of all ranks.
#include <offload/mpi.hpp>
#include <offload/runtime.hpp>

#include "check.hpp"

#include <exception>

namespace offload_test {

/// Rank 0 prints the verdict; returns the exit code for every rank.
inline int finish(offload::runtime& rt) {
  int mine = failures, total = 0;
  rt.call([&] { MPI_Allreduce(&mine, &total, 1, MPI_INT, MPI_SUM, offload::comm_of(rt)); });
  if (rt.rank() == 0) std::printf("%s: %d failed checks\n", total == 0 ? "PASS" : "FAIL", total);
  return total == 0 ? 0 : 1;
}

/// The whole of an MPI test program: checks the rank count, runs `body(rt)` on every rank
/// (an exception is a failed check), then finish().
template <class Body> int run_test(int ranks, Body&& body) {
  offload::runtime rt;
  if (rt.size() != ranks) {
    std::fprintf(stderr, "run with %d ranks\n", ranks);
    return 2;
  }
  try {
    body(rt);
  } catch (const std::exception& e) {
    EXPECT(false, "rank %d threw: %s", rt.rank(), e.what());
  }
  return finish(rt);
}

}  // namespace offload_test
