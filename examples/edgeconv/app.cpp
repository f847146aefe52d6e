// edgeconv_app: an application that owns MPI and links the EdgeConv kernel (no plugin). It
// initialises MPI itself (MPI_THREAD_MULTIPLE), lends MPI_COMM_WORLD to mpi-offload
// (runtime(adopt_mpi)), and offloads its jets: rank 0 runs a receiver, every other rank runs
// events on worker threads, each event one request of its jets, every result checked against
// the CPU implementation. The application finalises MPI.
//   mpirun -np 4 edgeconv_app [--events N] [--jets J] [--threads T]
#include <offload/mpi.hpp>
#include <offload/receiver.hpp>
#include <offload/runtime.hpp>
#include <offload/transmitter.hpp>

#include "edgeconv.hpp"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

namespace {

struct settings {
  int events = 200;  // per transmitter rank
  int jets = 16;     // per event
  int threads = 2;   // worker threads per transmitter rank
};

/// Parses the flags; throws std::invalid_argument naming a bad one.
settings parse(int argc, char** argv) {
  settings s;
  for (int i = 1; i < argc; i += 2) {
    const std::string flag = argv[i];
    if (i + 1 >= argc) throw std::invalid_argument(flag + " needs a value");
    const int v = std::stoi(argv[i + 1]);
    if (v < 1) throw std::invalid_argument(flag + " must be at least 1, not " + argv[i + 1]);
    if (flag == "--events")
      s.events = v;
    else if (flag == "--jets")
      s.jets = v;
    else if (flag == "--threads")
      s.threads = v;
    else
      throw std::invalid_argument("unknown flag " + flag + " (known: --events, --jets, --threads)");
  }
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  int provided = 0;
  MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided);
  int rank = 0, size = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  settings s;
  try {
    s = parse(argc, argv);
    if (size < 2) throw std::invalid_argument("run with at least 2 ranks (rank 0 serves the others)");
  } catch (const std::exception& e) {
    if (rank == 0) std::fprintf(stderr, "edgeconv_app: %s\n", e.what());
    MPI_Finalize();
    return 2;
  }

  long wrong = 0, remote = 0, done = 0;
  double seconds = 0;
  try {
    offload::runtime rt(offload::adopt_mpi{MPI_COMM_WORLD});
    offload::kernel_registry kernels = offload::kernel_registry::builtin();
    kernels.add(edgeconv::kernel());
    const offload::kernel& k = edgeconv::kernel();
    if (rank == 0) {
      offload::receiver rx(rt, kernels, offload::mpi_link{}, std::size_t(size - 1));
      const auto stats = rx.wait();
      std::printf("edgeconv_app: receiver served %llu requests, %s\n", static_cast<unsigned long long>(stats.requests),
                  stats.backend.c_str());
    } else {
      offload::transmitter tx(rt, kernels, offload::mpi_link{{0}});
      std::atomic<long> bad{0}, far{0}, next{0};
      const auto t0 = std::chrono::steady_clock::now();
      std::vector<std::thread> workers;
      for (int t = 0; t < s.threads; ++t)
        workers.emplace_back([&] {
          for (long e; (e = next++) < s.events;) {
            const auto in = k.make_inputs({std::uint64_t(rank) << 32 | std::uint64_t(e), std::uint64_t(s.jets), 0});
            const offload::result r = tx.submit("edgeconv", offload::product_views(in)).get();
            if (r.receiver() >= 0) far++;
            if (!r.ok() || !offload::compare_with_cpu(k, offload::product_views(in), r.products(), 1e-5, 1e-6).empty())
              bad++;
          }
        });
      for (auto& w : workers) w.join();
      seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      tx.close();
      wrong = bad;
      remote = far;
      done = s.events;
    }
  } catch (const std::exception& e) {  // e.g. MPI without MPI_THREAD_MULTIPLE: the others would wait
    std::fprintf(stderr, "edgeconv_app: rank %d: %s\n", rank, e.what());
    MPI_Abort(MPI_COMM_WORLD, 1);
  }  // the runtime is gone before MPI_Finalize; MPI is still ours
  long totals[3] = {0, 0, 0}, mine[3] = {wrong, remote, done};
  double slowest = 0;
  MPI_Reduce(mine, totals, 3, MPI_LONG, MPI_SUM, 0, MPI_COMM_WORLD);
  MPI_Reduce(&seconds, &slowest, 1, MPI_DOUBLE, MPI_MAX, 0, MPI_COMM_WORLD);
  if (rank == 0)
    std::printf("edgeconv_app: %ld events of %d jets from %d ranks in %.2f s (%.1f events/s), %ld remote, %ld wrong\n",
                totals[2], s.jets, size - 1, slowest, slowest > 0 ? double(totals[2]) / slowest : 0.0, totals[1],
                totals[0]);
  MPI_Finalize();
  return totals[0] == 0 ? 0 : 1;
}
