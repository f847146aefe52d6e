// offload-pingpong: the raw MPI baseline. No mpi-offload code runs in the measured loops: the
// numbers are what MPI itself gives on this machine, to compare offload-run against.
//   latency      ranks 0 and 1, measured as Intel's IMB-MPI1 PingPong measures it: blocking
//                MPI_Send/MPI_Recv between a send buffer and a separate receive buffer, both
//                allocated anew at each larger size and filled before any timing (warm); per size
//                min(--iterations, max(1, 40 MiB / size)) round trips (IMB's MSGSPERSAMPLE and
//                OVERALL_VOL) after IMB's untimed ones (imb_warmup); the value is the loop's time /
//                repetitions / 2, averaged over the two ranks (IMB's t_avg). A second, separately
//                timed loop stamps every round trip for the median (an extra field: its clock reads
//                stay out of the IMB-style loop). With --rewrite rank 0 writes its send buffer
//                afresh before each round trip, as an event loop writes each event's inputs
//                before it submits them; the write is left out of the time, so the value is then
//                the mean of the per-round-trip stamps / 2. With --echo rank 1 answers from the
//                buffer it received into, as an echo service does: the data rank 0 then copies
//                lies written in rank 1's cache (measured at 64 KiB: about 10 µs one way against
//                5-6 for IMB's clean buffers, in MPI alone).
//   probe-latency the same, with the MPI calls the library's progress thread makes
//                (mpi_endpoint): MPI_Isend, MPI_Improbe polled until the other side's message is
//                there (it arrives unexpected), MPI_Mrecv (MPI_Imrecv and MPI_Test from 256 KiB),
//                MPI_Test until the send completes: what MPI costs the library, before its own work
//   bandwidth    rank 0 streams a window of non-blocking sends to rank 1, which acks each window
//   many-to-one  every rank but 0 keeps `window` requests of --mr-bytes in flight to rank 0,
//                which answers each with --mr-reply-bytes: requests per second
// and two bounds on what any transport between these ranks can do, for checking the above
// (scripts/bench_overhead.sh refuses raw figures beyond them):
//   memcpy       rank 0 copies each size between two warmed buffers: the most bytes per second
//                a single-copy transfer (vader's CMA) could move; the fastest timed batch
//   cache-line   ranks 0 and 1 hand one cache line back and forth through shared memory, no MPI:
//                the least time any message from one to the other can take, one way; the
//                fastest timed batch of 100 round trips
#include "apps/common/logging.hpp"
#include "src/runtime/mpi_check.hpp"

#include <CLI/CLI.hpp>

#include <sched.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

namespace {

struct options {
  std::vector<std::string> patterns{"all"};
  std::size_t min_bytes = 8;
  std::size_t max_bytes = std::size_t{16} << 20;
  int iterations = 1000;
  int warmup = 100;
  bool warmup_given = false;  // latency: --warmup replaces IMB's schedule (imb_warmup)
  bool rewrite = false;
  bool echo = false;  // latency: rank 1 answers from the buffer it received into
  int repeats = 5;
  int window = 64;
  std::size_t mr_bytes = 65536;
  std::size_t mr_reply_bytes = 1024;
  int mr_window = 8;
  int mr_requests = 20000;
  std::string json;
};

/// Owns MPI for this process (initialised on the calling thread: the baseline has one thread).
class mpi_session {
 public:
  mpi_session(int& argc, char**& argv) {
    OFFLOAD_MPI_CHECK(MPI_Init(&argc, &argv));
    OFFLOAD_MPI_CHECK(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN));
    OFFLOAD_MPI_CHECK(MPI_Comm_rank(MPI_COMM_WORLD, &m_rank));
    OFFLOAD_MPI_CHECK(MPI_Comm_size(MPI_COMM_WORLD, &m_size));
  }
  ~mpi_session() { OFFLOAD_MPI_CHECK_NOEXCEPT(MPI_Finalize()); }
  mpi_session(const mpi_session&) = delete;
  mpi_session& operator=(const mpi_session&) = delete;
  int rank() const { return m_rank; }
  int size() const { return m_size; }

 private:
  int m_rank = 0, m_size = 0;
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0.0 : v[v.size() / 2];
}

/// Fewer iterations for large messages, so every size takes about as long.
int iterations_for(const options& o, std::size_t bytes) {
  const double budget = 64.0 * 1024 * 1024;  // bytes per direction per size
  return std::clamp(int(budget / double(std::max<std::size_t>(bytes, 1))), 10, o.iterations);
}

std::vector<std::size_t> sizes(const options& o) {
  std::vector<std::size_t> out;
  for (std::size_t s = o.min_bytes; s <= o.max_bytes; s *= 2) out.push_back(s);
  return out;
}

struct row {
  std::string pattern;
  std::size_t bytes;
  int ranks;
  double value;          // µs (latency), MB/s (bandwidth), requests/s (many-to-one)
  int repetitions = 0;   // latency: timed round trips
  double median_us = 0;  // latency: median of the per-round-trip stamps / 2
  double t_min_us = 0;   // latency: the faster rank's loop time / repetitions / 2 (IMB's t_min)
  double t_max_us = 0;   // latency: the slower rank's (IMB's t_max)
};

/// IMB's repetitions for one message size: at most MSGSPERSAMPLE (1000, our --iterations) and no
/// more than OVERALL_VOL (40 MiB) per direction, at least 1 (IMB_mem_manager.c, IMB_settings.h).
int imb_repetitions(const options& o, std::size_t bytes) {
  constexpr std::size_t overall_vol = std::size_t{40} << 20;
  return int(std::max<std::size_t>(
      1, std::min<std::size_t>(overall_vol / std::max<std::size_t>(bytes, 1), std::size_t(o.iterations))));
}

/// IMB's untimed round trips before a size's `n` timed ones: one to time a single round trip and
/// the count again to size it to the time limit (IMB_init_buffers_iter's dynamic pass: `n`
/// whenever n round trips take under a second), then IMB_warm_up's n / 10, or min(10, n) when
/// that is fewer than 10. 1101 at 8 B, 705 at 64 KiB, 51 at 1 MiB, 5 at 16 MiB.
int imb_warmup(int n) {
  return 1 + n + (n / 10 >= 10 ? n / 10 : std::min(10, n));
}

/// One round trip of `bytes` from rank 0's send buffer into rank 1's receive buffer and back.
void round_trip(const mpi_session& mpi, const char* send, char* recv, std::size_t bytes) {
  if (mpi.rank() == 0) {
    OFFLOAD_MPI_CHECK(MPI_Send(send, int(bytes), MPI_BYTE, 1, 1, MPI_COMM_WORLD));
    OFFLOAD_MPI_CHECK(MPI_Recv(recv, int(bytes), MPI_BYTE, 1, 1, MPI_COMM_WORLD, MPI_STATUS_IGNORE));
  } else if (mpi.rank() == 1) {
    OFFLOAD_MPI_CHECK(MPI_Recv(recv, int(bytes), MPI_BYTE, 0, 1, MPI_COMM_WORLD, MPI_STATUS_IGNORE));
    OFFLOAD_MPI_CHECK(MPI_Send(send, int(bytes), MPI_BYTE, 0, 1, MPI_COMM_WORLD));
  }
}

/// Receives the next message from `peer` as the library's progress thread does (mpi_endpoint,
/// its defaults): it polls MPI_Improbe until the message is there (no receive was posted for it:
/// it arrived unexpected), then receives it with MPI_Mrecv below 256 KiB, else MPI_Imrecv and
/// MPI_Test until it is in.
void probe_receive(int peer, char* into, std::size_t bytes) {
  int flag = 0;
  MPI_Message msg;
  while (!flag) OFFLOAD_MPI_CHECK(MPI_Improbe(peer, 1, MPI_COMM_WORLD, &flag, &msg, MPI_STATUS_IGNORE));
  if (bytes < (256u << 10)) {
    OFFLOAD_MPI_CHECK(MPI_Mrecv(into, int(bytes), MPI_BYTE, &msg, MPI_STATUS_IGNORE));
    return;
  }
  MPI_Request request;
  OFFLOAD_MPI_CHECK(MPI_Imrecv(into, int(bytes), MPI_BYTE, &msg, &request));
  for (flag = 0; !flag;) OFFLOAD_MPI_CHECK(MPI_Test(&request, &flag, MPI_STATUS_IGNORE));
}

/// A round trip with the library's MPI calls (probe-latency): a non-blocking send, the other
/// side's message received by probe_receive, the send then completed by MPI_Test.
void probe_round_trip(const mpi_session& mpi, const char* send, char* recv, std::size_t bytes) {
  if (mpi.rank() > 1) return;
  const int peer = 1 - mpi.rank();
  auto send_and_complete = [&](bool receive_first) {
    if (receive_first) probe_receive(peer, recv, bytes);
    MPI_Request request;
    OFFLOAD_MPI_CHECK(MPI_Isend(send, int(bytes), MPI_BYTE, peer, 1, MPI_COMM_WORLD, &request));
    if (!receive_first) probe_receive(peer, recv, bytes);
    for (int flag = 0; !flag;) OFFLOAD_MPI_CHECK(MPI_Test(&request, &flag, MPI_STATUS_IGNORE));
  };
  send_and_complete(mpi.rank() == 1);
}

/// The unit of a pattern's value, and what the value is.
const char* unit(const std::string& pattern) {
  if (pattern == "latency" || pattern == "probe-latency" || pattern == "cache-line") return "us";
  if (pattern == "bandwidth" || pattern == "memcpy") return "MB/s";
  return "requests/s";
}
const char* note(const std::string& pattern) {
  if (pattern == "latency") return "us (one way: loop time / repetitions / 2, IMB's t_avg)";
  if (pattern == "probe-latency") return "us (one way, the library's MPI calls: Isend, Improbe, Mrecv/Imrecv)";
  if (pattern == "cache-line") return "us (one way, shared memory without MPI; fastest batch)";
  if (pattern == "memcpy") return "MB/s (rank 0 alone; fastest batch)";
  if (pattern == "bandwidth") return "MB/s (median)";
  return "requests/s (median)";
}

/// Keeps the compiler from dropping a copy whose result nobody reads.
void keep(void* p) {
  asm volatile("" : : "r"(p) : "memory");
}

void copy_rate(const mpi_session& mpi, const options& o, std::vector<row>& rows) {
  if (mpi.rank() == 0) {
    std::vector<char> from(o.max_bytes, 1), to(o.max_bytes, 0);  // touched: every page faulted in
    for (auto bytes : sizes(o)) {
      // Timed in batches of at least 64 KiB (at most 1000 copies), about 64 MiB a pass; the best
      // batch counts, so that a batch the scheduler interrupted (a loaded machine) cannot lower
      // the bound.
      const long batch = std::clamp(long((std::size_t{64} << 10) / bytes), 1L, 1000L);
      const long batches = std::clamp(long((std::size_t{64} << 20) / bytes) / batch, 4L, 1000L);
      double best = 0;
      for (int r = 0; r < o.repeats + 1; ++r) {  // the first pass warms up
        for (long k = 0; k < batches; ++k) {
          const double t0 = MPI_Wtime();
          for (long i = 0; i < batch; ++i) {
            std::memcpy(to.data(), from.data(), bytes);
            keep(to.data());
          }
          const double t = MPI_Wtime() - t0;
          if (r > 0 && t > 0) best = std::max(best, double(bytes) * double(batch) / t / 1e6);
        }
      }
      rows.push_back({"memcpy", bytes, 1, best});
    }
  }
  OFFLOAD_MPI_CHECK(MPI_Barrier(MPI_COMM_WORLD));
}

/// Owns a communicator made by a split (MPI_COMM_NULL: nothing to free).
struct comm_owner {
  MPI_Comm comm = MPI_COMM_NULL;
  comm_owner() = default;
  comm_owner(const comm_owner&) = delete;
  comm_owner& operator=(const comm_owner&) = delete;
  ~comm_owner() {
    if (comm != MPI_COMM_NULL) OFFLOAD_MPI_CHECK_NOEXCEPT(MPI_Comm_free(&comm));
  }
};
/// Owns an MPI window.
struct win_owner {
  MPI_Win win = MPI_WIN_NULL;
  win_owner() = default;
  win_owner(const win_owner&) = delete;
  win_owner& operator=(const win_owner&) = delete;
  ~win_owner() {
    if (win != MPI_WIN_NULL) OFFLOAD_MPI_CHECK_NOEXCEPT(MPI_Win_free(&win));
  }
};

/// Spins until `flag` holds `value`; yields after a while, so that two ranks sharing one core
/// (oversubscribed, unbound) still take turns. On separate cores the value comes within a few
/// hundred spins and no yield is timed.
void wait_for(std::atomic_ref<std::uint64_t>& flag, std::uint64_t value) {
  for (int spins = 0; flag.load(std::memory_order_acquire) != value; ++spins)
    if (spins >= 20000) sched_yield();
}

void cache_line(const mpi_session& mpi, const options& o, std::vector<row>& rows) {
  comm_owner pair, shared;
  OFFLOAD_MPI_CHECK(MPI_Comm_split(MPI_COMM_WORLD, mpi.rank() < 2 ? 0 : MPI_UNDEFINED, mpi.rank(), &pair.comm));
  int shared_size = 0;
  if (pair.comm != MPI_COMM_NULL) {
    OFFLOAD_MPI_CHECK(MPI_Comm_split_type(pair.comm, MPI_COMM_TYPE_SHARED, mpi.rank(), MPI_INFO_NULL, &shared.comm));
    OFFLOAD_MPI_CHECK(MPI_Comm_size(shared.comm, &shared_size));
  }
  int ok = shared_size == 2 || mpi.rank() >= 2, all_ok = 0;
  OFFLOAD_MPI_CHECK(MPI_Allreduce(&ok, &all_ok, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD));
  if (!all_ok) throw std::runtime_error("--pattern cache-line: ranks 0 and 1 share no memory (not on one node)");
  if (mpi.rank() < 2) {
    // Two cache lines in memory both ranks map: rank 0 writes `ping`, rank 1 writes `pong`.
    constexpr std::size_t line = 64;
    win_owner win;
    void* base = nullptr;
    OFFLOAD_MPI_CHECK(MPI_Win_allocate_shared(MPI_Aint(mpi.rank() == 0 ? 3 * line : 0), 1, MPI_INFO_NULL, shared.comm,
                                              &base, &win.win));
    MPI_Aint size = 0;
    int disp = 0;
    OFFLOAD_MPI_CHECK(MPI_Win_shared_query(win.win, 0, &size, &disp, &base));
    auto* lines = reinterpret_cast<std::uint64_t*>((reinterpret_cast<std::uintptr_t>(base) + line - 1) & ~(line - 1));
    std::atomic_ref<std::uint64_t> ping(lines[0]), pong(lines[line / sizeof(std::uint64_t)]);
    if (mpi.rank() == 0) ping.store(0), pong.store(0);
    OFFLOAD_MPI_CHECK(MPI_Barrier(shared.comm));
    // Timed in batches of 100 round trips (1000 batches a pass); the fastest batch counts, so
    // that a batch the scheduler interrupted (a loaded machine) cannot raise the bound.
    constexpr int batch = 100, batches = 1000;
    double best = 1e300;
    std::uint64_t k = 0;
    for (int r = 0; r < o.repeats + 1; ++r) {  // the first pass warms up
      OFFLOAD_MPI_CHECK(MPI_Barrier(shared.comm));
      for (int b = 0; b < batches; ++b) {
        const double t0 = MPI_Wtime();
        for (int i = 0; i < batch; ++i) {
          ++k;
          if (mpi.rank() == 0) {
            ping.store(k, std::memory_order_release);
            wait_for(pong, k);
          } else {
            wait_for(ping, k);
            pong.store(k, std::memory_order_release);
          }
        }
        const double t = MPI_Wtime() - t0;
        if (r > 0) best = std::min(best, t / batch / 2);
      }
    }
    OFFLOAD_MPI_CHECK(MPI_Barrier(shared.comm));
    if (mpi.rank() == 0) rows.push_back({"cache-line", line, 2, best * 1e6});
  }
  OFFLOAD_MPI_CHECK(MPI_Barrier(MPI_COMM_WORLD));
}

/// `probe`: the probe-latency pattern (probe_round_trip), timed the same way.
void latency(const mpi_session& mpi, const options& o, std::vector<row>& rows, bool probe = false) {
  const auto trip = probe ? probe_round_trip : round_trip;
  std::vector<char> send, recv;
  const bool pair = mpi.rank() < 2;  // ranks beyond 1 only join the barriers and reductions
  for (auto bytes : sizes(o)) {
    if (send.size() < bytes) {
      // As IMB does (IMB_alloc_buf, IMB_set_buf): when a size needs more, free both buffers,
      // allocate that size and fill it, so every page is touched before timing. Measured against
      // IMB-MPI1 here, one allocation at the largest size read 64 KiB about 10% faster than IMB
      // (results/overhead-baseline.md).
      std::vector<char>().swap(send);
      std::vector<char>().swap(recv);
      send.assign(bytes, char(mpi.rank() + 1));
      recv.assign(bytes, 0);
    }
    const int n = imb_repetitions(o, bytes);
    const int warmup = o.warmup_given ? o.warmup : imb_warmup(n);
    // --echo: rank 1's reply leaves from where its request arrived.
    const char* reply_from = o.echo && mpi.rank() == 1 ? recv.data() : send.data();
    OFFLOAD_MPI_CHECK(MPI_Barrier(MPI_COMM_WORLD));
    for (int i = 0; i < warmup && pair; ++i) trip(mpi, reply_from, recv.data(), bytes);
    std::vector<double> stamps;  // per round trip, s
    stamps.reserve(std::size_t(n));
    double loop = 0;  // this rank's time for the n round trips, s
    OFFLOAD_MPI_CHECK(MPI_Barrier(MPI_COMM_WORLD));
    OFFLOAD_MPI_CHECK(MPI_Barrier(MPI_COMM_WORLD));  // IMB's N_BARR
    if (!o.rewrite && pair) {
      const double t0 = MPI_Wtime();
      for (int i = 0; i < n; ++i) trip(mpi, reply_from, recv.data(), bytes);
      loop = MPI_Wtime() - t0;
    }
    // The stamped loop: every round trip timed on its own (--rewrite: the only loop, the write
    // before each round trip left out of its stamp).
    OFFLOAD_MPI_CHECK(MPI_Barrier(MPI_COMM_WORLD));
    for (int i = 0; i < n && pair; ++i) {
      if (o.rewrite && mpi.rank() == 0) std::fill_n(send.data(), bytes, char(i));
      const double t0 = MPI_Wtime();
      trip(mpi, reply_from, recv.data(), bytes);
      stamps.push_back(MPI_Wtime() - t0);
    }
    // --rewrite: rank 1's stamps include its waits while rank 0 writes, so rank 0's time is the
    // pair's.
    if (o.rewrite) {
      for (double t : stamps) loop += t;
      OFFLOAD_MPI_CHECK(MPI_Bcast(&loop, 1, MPI_DOUBLE, 0, MPI_COMM_WORLD));
    }
    // IMB's t_min / t_max / t_avg over the pair (ranks beyond 1 contribute nothing).
    double mine[2] = {pair ? loop : 1e300, pair ? loop : -1e300}, extremes[2] = {0, 0};
    double sum = 0, part = pair ? loop : 0;
    OFFLOAD_MPI_CHECK(MPI_Reduce(&mine[0], &extremes[0], 1, MPI_DOUBLE, MPI_MIN, 0, MPI_COMM_WORLD));
    OFFLOAD_MPI_CHECK(MPI_Reduce(&mine[1], &extremes[1], 1, MPI_DOUBLE, MPI_MAX, 0, MPI_COMM_WORLD));
    OFFLOAD_MPI_CHECK(MPI_Reduce(&part, &sum, 1, MPI_DOUBLE, MPI_SUM, 0, MPI_COMM_WORLD));
    const double per = 1e6 / n / 2;  // s per loop -> µs one way
    row r{probe ? "probe-latency" : "latency", bytes, 2, sum / 2 * per};
    r.repetitions = n;
    r.median_us = median(stamps) * 1e6 / 2;
    r.t_min_us = extremes[0] * per;
    r.t_max_us = extremes[1] * per;
    rows.push_back(r);
  }
}

void bandwidth(const mpi_session& mpi, const options& o, std::vector<row>& rows) {
  std::vector<char> buf(o.max_bytes);
  std::vector<MPI_Request> reqs(std::size_t(o.window));
  char ack = 0;
  for (auto bytes : sizes(o)) {
    const int windows = std::max(2, iterations_for(o, bytes * std::size_t(o.window)) / 4);
    std::vector<double> rates;
    for (int r = 0; r < o.repeats + 1; ++r) {  // the first repeat warms up
      OFFLOAD_MPI_CHECK(MPI_Barrier(MPI_COMM_WORLD));
      const double t0 = MPI_Wtime();
      for (int w = 0; w < windows; ++w) {
        if (mpi.rank() == 0) {
          for (auto& q : reqs) OFFLOAD_MPI_CHECK(MPI_Isend(buf.data(), int(bytes), MPI_BYTE, 1, 2, MPI_COMM_WORLD, &q));
          OFFLOAD_MPI_CHECK(MPI_Waitall(o.window, reqs.data(), MPI_STATUSES_IGNORE));
          OFFLOAD_MPI_CHECK(MPI_Recv(&ack, 1, MPI_BYTE, 1, 3, MPI_COMM_WORLD, MPI_STATUS_IGNORE));
        } else if (mpi.rank() == 1) {
          // One buffer for the whole window: the data is not looked at (as in osu_bw).
          for (auto& q : reqs) OFFLOAD_MPI_CHECK(MPI_Irecv(buf.data(), int(bytes), MPI_BYTE, 0, 2, MPI_COMM_WORLD, &q));
          OFFLOAD_MPI_CHECK(MPI_Waitall(o.window, reqs.data(), MPI_STATUSES_IGNORE));
          OFFLOAD_MPI_CHECK(MPI_Send(&ack, 1, MPI_BYTE, 0, 3, MPI_COMM_WORLD));
        }
      }
      const double t = MPI_Wtime() - t0;
      if (r > 0) rates.push_back(double(bytes) * o.window * windows / t / 1e6);
    }
    rows.push_back({"bandwidth", bytes, 2, median(rates)});
  }
}

void many_to_one(const mpi_session& mpi, const options& o, std::vector<row>& rows) {
  const int senders = mpi.size() - 1;
  const int per_sender = std::max(o.mr_window, o.mr_requests / std::max(senders, 1));
  std::vector<char> req(o.mr_bytes), reply(o.mr_reply_bytes);
  std::vector<double> rates;
  for (int r = 0; r < o.repeats + 1; ++r) {
    OFFLOAD_MPI_CHECK(MPI_Barrier(MPI_COMM_WORLD));
    const double t0 = MPI_Wtime();
    if (mpi.rank() == 0) {
      std::vector<char> in(o.mr_bytes);
      for (long k = 0; k < long(per_sender) * senders; ++k) {
        MPI_Status st;
        OFFLOAD_MPI_CHECK(MPI_Recv(in.data(), int(o.mr_bytes), MPI_BYTE, MPI_ANY_SOURCE, 4, MPI_COMM_WORLD, &st));
        OFFLOAD_MPI_CHECK(MPI_Send(reply.data(), int(o.mr_reply_bytes), MPI_BYTE, st.MPI_SOURCE, 5, MPI_COMM_WORLD));
      }
    } else {
      // Keep mr_window requests outstanding: send, and send again as each reply comes back.
      std::vector<MPI_Request> sends(std::size_t(o.mr_window), MPI_REQUEST_NULL);
      int sent = 0;
      for (; sent < std::min(o.mr_window, per_sender); ++sent)
        OFFLOAD_MPI_CHECK(
            MPI_Isend(req.data(), int(o.mr_bytes), MPI_BYTE, 0, 4, MPI_COMM_WORLD, &sends[std::size_t(sent)]));
      for (int got = 0; got < per_sender; ++got) {
        OFFLOAD_MPI_CHECK(
            MPI_Recv(reply.data(), int(o.mr_reply_bytes), MPI_BYTE, 0, 5, MPI_COMM_WORLD, MPI_STATUS_IGNORE));
        if (sent < per_sender) {
          auto& slot = sends[std::size_t(sent % o.mr_window)];
          OFFLOAD_MPI_CHECK(MPI_Wait(&slot, MPI_STATUS_IGNORE));
          OFFLOAD_MPI_CHECK(MPI_Isend(req.data(), int(o.mr_bytes), MPI_BYTE, 0, 4, MPI_COMM_WORLD, &slot));
          ++sent;
        }
      }
      OFFLOAD_MPI_CHECK(MPI_Waitall(o.mr_window, sends.data(), MPI_STATUSES_IGNORE));
    }
    OFFLOAD_MPI_CHECK(MPI_Barrier(MPI_COMM_WORLD));
    const double t = MPI_Wtime() - t0;
    if (r > 0) rates.push_back(double(per_sender) * senders / t);
  }
  rows.push_back({"many-to-one", o.mr_bytes, mpi.size(), median(rates)});
}

}  // namespace

int main(int argc, char** argv) {
  options o;
  CLI::App app{"offload-pingpong: raw MPI latency, bandwidth and many-to-one request rate (the baseline)"};
  app.option_defaults()->always_capture_default();
  app.add_option("--pattern", o.patterns,
                 "what to measure, comma-separated (all: latency, bandwidth and many-to-one; probe-latency, memcpy and "
                 "cache-line only when named)")
      ->delimiter(',')
      ->check(CLI::IsMember({"all", "latency", "probe-latency", "bandwidth", "many-to-one", "memcpy", "cache-line"}));
  app.add_option("--min-bytes", o.min_bytes, "smallest message")
      ->check(CLI::Range(std::size_t{1}, std::size_t{1} << 30));
  app.add_option("--max-bytes", o.max_bytes, "largest message (sizes double from the smallest)")
      ->check(CLI::Range(std::size_t{1}, std::size_t{1} << 30));
  app.add_option("--iterations", o.iterations,
                 "round trips per size at most (latency: IMB's MSGSPERSAMPLE, and no more than 40 MiB per size)")
      ->check(CLI::Range(1, 1000000));
  app.add_option("--warmup", o.warmup,
                 "untimed round trips per size (latency: IMB's 1 + repetitions + repetitions / 10 (at least "
                 "min(10, repetitions)) unless given)")
      ->check(CLI::Range(0, 1000000));
  app.add_flag("--rewrite", o.rewrite,
               "latency: rank 0 writes its send buffer afresh before each round trip (untimed), as an event loop "
               "writes fresh inputs");
  app.add_flag("--echo", o.echo,
               "latency: rank 1 answers from the buffer it received into, as an echo service does (its data is "
               "then in rank 1's cache, written, when rank 0 copies it)");
  app.add_option("--repeats", o.repeats, "timed repetitions of the bandwidth and many-to-one loops (median)")
      ->check(CLI::Range(1, 1000));
  app.add_option("--window", o.window, "sends in flight in the bandwidth test")->check(CLI::Range(1, 4096));
  app.add_option("--mr-bytes", o.mr_bytes, "many-to-one: request size")
      ->check(CLI::Range(std::size_t{1}, std::size_t{1} << 30));
  app.add_option("--mr-reply-bytes", o.mr_reply_bytes, "many-to-one: reply size")
      ->check(CLI::Range(std::size_t{1}, std::size_t{1} << 30));
  app.add_option("--mr-window", o.mr_window, "many-to-one: requests in flight per sender")->check(CLI::Range(1, 4096));
  app.add_option("--mr-requests", o.mr_requests, "many-to-one: requests per repetition, all senders together")
      ->check(CLI::Range(1, 100000000));
  app.add_option("--json", o.json, "also write the rows as JSON (rank 0)");
  std::string log_level = "warn";
  offload::app::add_log_level(app, log_level);
  const char* world_rank = std::getenv("OMPI_COMM_WORLD_RANK");
  try {
    app.parse(argc, argv);
    if (o.min_bytes > o.max_bytes) throw CLI::ValidationError("--min-bytes", "is larger than --max-bytes");
    o.warmup_given = app.count("--warmup") > 0;
  } catch (const CLI::ParseError& e) {
    if (world_rank == nullptr || std::string(world_rank) == "0" || e.get_exit_code() == 0) return app.exit(e);
    return e.get_exit_code();
  }
  offload::app::setup_logging(log_level, "offload-pingpong");
  try {
    mpi_session mpi(argc, argv);
    if (mpi.size() < 2) {
      if (mpi.rank() == 0) std::fprintf(stderr, "offload-pingpong: run with at least 2 ranks\n");
      return 2;
    }
    std::vector<row> rows;
    const auto wanted = [&](const char* p) {
      return std::any_of(o.patterns.begin(), o.patterns.end(), [&](const std::string& x) {
        return x == p || (x == "all" && std::strcmp(p, "memcpy") != 0 && std::strcmp(p, "cache-line") != 0);
      });
    };
    if (wanted("memcpy")) copy_rate(mpi, o, rows);
    if (wanted("cache-line")) cache_line(mpi, o, rows);
    if (wanted("latency")) latency(mpi, o, rows);
    if (std::find(o.patterns.begin(), o.patterns.end(), "probe-latency") != o.patterns.end())
      latency(mpi, o, rows, true);
    if (wanted("bandwidth")) bandwidth(mpi, o, rows);
    if (wanted("many-to-one")) many_to_one(mpi, o, rows);
    if (mpi.rank() == 0) {
      std::printf("%-12s %10s %6s %14s\n", "pattern", "bytes", "ranks", "value");
      for (const auto& r : rows) {
        std::printf("%-12s %10zu %6d %14.2f %s\n", r.pattern.c_str(), r.bytes, r.ranks, r.value, note(r.pattern));
        if (r.pattern == "latency")
          std::printf("%-12s %10s %6s %14s %d repetitions, t_min %.2f, t_max %.2f, median round trip / 2 %.2f\n", "",
                      "", "", "", r.repetitions, r.t_min_us, r.t_max_us, r.median_us);
      }
      if (!o.json.empty()) {
        std::ofstream f(o.json);
        if (!f) throw std::runtime_error("cannot write --json file '" + o.json + "'");
        f << "{\"rows\": [\n";
        for (std::size_t i = 0; i < rows.size(); ++i) {
          f << "  {\"pattern\": \"" << rows[i].pattern << "\", \"bytes\": " << rows[i].bytes
            << ", \"ranks\": " << rows[i].ranks << ", \"value\": " << rows[i].value << ", \"unit\": \""
            << unit(rows[i].pattern) << "\"";
          if (rows[i].pattern == "latency")
            f << ", \"repetitions\": " << rows[i].repetitions << ", \"t_min_us\": " << rows[i].t_min_us
              << ", \"t_max_us\": " << rows[i].t_max_us << ", \"median_us\": " << rows[i].median_us;
          f << "}" << (i + 1 < rows.size() ? "," : "") << "\n";
        }
        f << "]}\n";
      }
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "offload-pingpong: %s\n", e.what());
    MPI_Abort(MPI_COMM_WORLD, 1);
  }
  return 0;
}
