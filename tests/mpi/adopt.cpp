// An application that owns MPI and lends part of it to the library (runtime(adopt_mpi)).
// Run with 5 ranks. The application calls MPI_Init_thread itself and splits MPI_COMM_WORLD:
// ranks 0-2 offload (rank 0 of that part a receiver, 1-2 transmitters submitting from two
// threads each) while the application's own threads run collectives on the same part;
// ranks 3-4 run collectives among themselves throughout. The runtime never initialises or
// finalises MPI and leaves MPI_COMM_WORLD's error handler alone; the application finalises.
//   adopt              (MPI_THREAD_MULTIPLE: must pass)
//   adopt --funneled   (MPI_THREAD_FUNNELED: the runtime must refuse, naming both levels)
#include <offload/mpi.hpp>
#include <offload/receiver.hpp>
#include <offload/runtime.hpp>
#include <offload/transmitter.hpp>

#include "check.hpp"

#include <string>
#include <thread>
#include <vector>

using namespace offload;

namespace {

/// Collectives on `comm` from the application's thread: the sum of 1..size, `rounds` times.
void own_collectives(MPI_Comm comm, int rounds) {
  int rank = 0, size = 0;
  MPI_Comm_rank(comm, &rank);
  MPI_Comm_size(comm, &size);
  for (int i = 0; i < rounds; ++i) {
    int mine = rank + 1 + i, sum = 0;
    MPI_Allreduce(&mine, &sum, 1, MPI_INT, MPI_SUM, comm);
    EXPECT(sum == size * (size + 1) / 2 + size * i, "own allreduce %d gave %d", i, sum);
  }
}

void offload_part(MPI_Comm part) {
  runtime rt(adopt_mpi{part});
  int part_rank = 0, part_size = 0;
  MPI_Comm_rank(part, &part_rank);
  MPI_Comm_size(part, &part_size);
  EXPECT(rt.rank() == part_rank && rt.size() == part_size, "runtime rank %d/%d, part %d/%d", rt.rank(), rt.size(),
         part_rank, part_size);
  const auto& kernels = kernel_registry::builtin();
  std::unique_ptr<receiver> rx;
  std::unique_ptr<transmitter> tx;
  if (rt.rank() == 0)
    rx = std::make_unique<receiver>(rt, kernels, mpi_link{}, std::size_t(part_size - 1));
  else
    tx = std::make_unique<transmitter>(rt, kernels, mpi_link{{0}});
  // The application's own collectives on its communicator while the library's traffic runs.
  std::thread app_thread([&] { own_collectives(part, 50); });
  if (tx) {
    const kernel& k = *kernels.find("mlp");
    std::vector<std::thread> workers;
    for (int t = 0; t < 2; ++t)
      workers.emplace_back([&, t] {
        for (int i = 0; i < 20; ++i) {
          auto in = k.make_inputs({std::uint64_t(1000 * rt.rank() + 100 * t + i), 32, 0});
          auto r = tx->submit("mlp", product_views(in)).get();
          EXPECT(r.ok() && r.receiver() == 0, "request %d/%d ran on %d: %s", t, i, r.receiver(), r.error().c_str());
          if (r.ok()) {
            const auto diff = compare_with_cpu(k, product_views(in), r.products());
            EXPECT(diff.empty(), "request %d/%d: %s", t, i, diff.c_str());
          }
        }
      });
    for (auto& w : workers) w.join();
    tx->close();
  }
  if (rx) rx->wait();
  app_thread.join();
}

}  // namespace

int main(int argc, char** argv) {
  const bool funneled = argc > 1 && std::string(argv[1]) == "--funneled";
  const int wanted = funneled ? MPI_THREAD_FUNNELED : MPI_THREAD_MULTIPLE;
  int provided = 0;
  MPI_Init_thread(&argc, &argv, wanted, &provided);
  int rank = 0, size = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  if (funneled) {
    // Every rank tries; the refusal must name the level it got and the one it needs.
    try {
      runtime rt(adopt_mpi{MPI_COMM_WORLD});
      EXPECT(false, "rank %d: a runtime adopted MPI at thread level %d", rank, provided);
    } catch (const mpi_error& e) {
      if (rank == 0) std::printf("refused: %s\n", e.what());
    }
  } else if (size != 5) {
    if (rank == 0) std::fprintf(stderr, "run with 5 ranks\n");
    MPI_Abort(MPI_COMM_WORLD, 2);
  } else {
    EXPECT(provided == MPI_THREAD_MULTIPLE, "MPI gave thread level %d", provided);
    MPI_Comm part = MPI_COMM_NULL;
    const int color = rank < 3 ? 0 : 1;
    MPI_Comm_split(MPI_COMM_WORLD, color, rank, &part);
    try {
      if (color == 0)
        offload_part(part);
      else
        own_collectives(part, 500);
    } catch (const std::exception& e) {
      EXPECT(false, "rank %d threw: %s", rank, e.what());
    }
    // The library is gone: MPI is still the application's, and untouched.
    int finalized = 1;
    MPI_Finalized(&finalized);
    EXPECT(finalized == 0, "MPI was finalised by the library");
    MPI_Errhandler handler = MPI_ERRHANDLER_NULL;
    MPI_Comm_get_errhandler(MPI_COMM_WORLD, &handler);
    EXPECT(handler == MPI_ERRORS_ARE_FATAL, "the library changed MPI_COMM_WORLD's error handler");
    MPI_Errhandler_free(&handler);
    own_collectives(part, 5);
    MPI_Comm_free(&part);
  }
  int mine = offload_test::failures, total = 0;
  MPI_Allreduce(&mine, &total, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
  if (rank == 0) std::printf("%s: %d failed checks\n", total == 0 ? "PASS" : "FAIL", total);
  MPI_Finalize();
  return total == 0 ? 0 : 1;
}
