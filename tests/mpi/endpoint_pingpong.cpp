// The library's MPI transport alone, as a ping-pong (scripts/bench_overhead.sh puts it beside
// offload-pingpong's latency and probe-latency and offload-run's stages): rank 0 sends a request
// of one u8 product the way a transmitter does (gathered: its payload from where it lies, in a
// host-pool block; a head and a part from mpi_link's parts_from), rank 1 decodes it on arrival
// and answers with a reply that gathers the request's payload in place (as the receiver answers
// echo), and rank 0 decodes the reply. mpi_endpoint with its host pool and its defaults
// (MPI_Mrecv below 256 KiB, parts from 32 KiB); no transmitter, receiver, sessions or progress
// thread: each rank's one thread polls receive() and progress_sends() without pause.
//
// Usage: mpiexec -np 2 test_mpi_endpoint_pingpong [--parts-from N] [--same-data] [BYTES...]
// (default sizes 8 65536 1048576; --parts-from as mpi_link::parts_from, default 32 KiB;
// --same-data: rank 0 does not write its request's block before each round trip)
// Prints per size: "endpoint-latency BYTES 2 US us" (the median per-round-trip stamp / 2, as
// offload-pingpong's median_us) after warm-up round trips. No timing is judged.
#include "src/transport/mpi_endpoint.hpp"

#include <offload/host_pool.hpp>
#include <offload/mpi.hpp>
#include <offload/wire.hpp>

#include <mpi.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

using namespace offload;

namespace {

/// Polls until a message arrives, completing sends meanwhile; decodes it.
message next_message(detail::mpi_endpoint& ep) {
  for (;;) {
    ep.progress_sends();
    if (auto in = ep.receive()) {
      auto m = message::from(std::move(in->bytes));
      if (!m) {
        std::fprintf(stderr, "FAIL: a malformed message: %s\n", m.error().text.c_str());
        MPI_Abort(MPI_COMM_WORLD, 2);
      }
      return std::move(m.value());
    }
  }
}

/// Sends one message gathering `payload` (held alive by `owner` until sent).
void send_gathered(detail::mpi_endpoint& ep, host_pool& pool, int dest, message_kind kind, std::uint64_t id,
                   std::span<const std::byte> payload, std::shared_ptr<const void> owner) {
  message_info info;
  info.kind = kind;
  info.request_id = id;
  const product_views views({product_view{"x", dtype::u8, payload.size(), payload.data()}});
  auto out = gather(info, views, pool.acquire(256));
  out.keep_alive = std::move(owner);
  ep.send(dest, std::move(out));
}

}  // namespace

int main(int argc, char** argv) {
  int provided = 0;
  MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
  int rank = 0, size = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  if (size != 2) {
    if (rank == 0) std::fprintf(stderr, "FAIL: run with exactly 2 ranks, not %d\n", size);
    MPI_Finalize();
    return 2;
  }
  const mpi_link defaults;
  std::uint64_t parts_from = defaults.parts_from;
  bool same_data = false;
  std::vector<std::uint64_t> sizes;
  for (int i = 1; i < argc; ++i) {
    if (std::string(argv[i]) == "--parts-from" && i + 1 < argc)
      parts_from = std::strtoull(argv[++i], nullptr, 10);
    else if (std::string(argv[i]) == "--same-data")
      same_data = true;
    else
      sizes.push_back(std::strtoull(argv[i], nullptr, 10));
  }
  if (std::find(sizes.begin(), sizes.end(), 0u) != sizes.end() || parts_from == 0) {
    if (rank == 0) std::fprintf(stderr, "FAIL: sizes and --parts-from are whole numbers of bytes from 1\n");
    MPI_Finalize();
    return 2;
  }
  if (sizes.empty()) sizes = {8, 65536, 1048576};
  {
    auto pool = host_pool::make();
    detail::mpi_endpoint ep(MPI_COMM_WORLD, *pool, std::uint64_t(1) << 31, defaults.blocking_receive_below, parts_from);
    std::uint64_t id = 0;
    for (const auto bytes : sizes) {
      const int timed = bytes >= (1u << 20) ? 100 : 2000, warmup = timed / 10;
      std::vector<double> stamps;
      MPI_Barrier(MPI_COMM_WORLD);
      for (int i = 0; i < warmup + timed; ++i) {
        ++id;
        double t0 = MPI_Wtime();
        if (rank == 0) {
          // A fresh pooled block per request, written anew as a transmitter's make_product
          // gives it (the write is left out of the time, as offload-pingpong --rewrite does).
          auto block = std::make_shared<buffer>(pool->acquire(bytes));
          if (!same_data) std::fill_n(block->data(), bytes, std::byte(id));
          t0 = MPI_Wtime();
          const std::span<const std::byte> payload(block->data(), bytes);
          send_gathered(ep, *pool, 1, message_kind::request, id, payload, block);
          const auto reply = next_message(ep);
          if (reply.header().request_id != id || reply.products().size() != 1 ||
              reply.products()[0].size_bytes() != bytes) {
            std::fprintf(stderr, "FAIL: reply %llu does not answer request %llu\n",
                         (unsigned long long)reply.header().request_id, (unsigned long long)id);
            MPI_Abort(MPI_COMM_WORLD, 2);
          }
        } else {
          auto request = std::make_shared<message>(next_message(ep));
          const auto& p = request->products()[0];
          send_gathered(ep, *pool, 0, message_kind::reply, request->header().request_id, {p.data, p.size_bytes()},
                        request);
          while (ep.pending_sends() > 0) ep.progress_sends();
        }
        if (i >= warmup) stamps.push_back(MPI_Wtime() - t0);
      }
      while (ep.pending_sends() > 0) ep.progress_sends();
      if (rank == 0) {
        std::nth_element(stamps.begin(), stamps.begin() + std::ptrdiff_t(stamps.size() / 2), stamps.end());
        std::printf("endpoint-latency %10llu 2 %10.2f us\n", (unsigned long long)bytes,
                    stamps[stamps.size() / 2] / 2 * 1e6);
      }
    }
    MPI_Barrier(MPI_COMM_WORLD);
  }
  MPI_Finalize();
  return 0;
}
