// offload-pingpong: the raw MPI baseline, in the manner of osu_latency, osu_bw and a
// request/reply osu_mbw_mr. No mpi-offload code runs in the measured loops: the numbers are
// what MPI itself gives on this machine, to compare offload-run against.
//   latency      ranks 0 and 1: half the round trip of blocking send/recv, median; with
//                --rewrite rank 0 writes its send buffer afresh before each round trip (untimed),
//                as an event loop writes each event's inputs before it submits them
//   bandwidth    rank 0 streams a window of non-blocking sends to rank 1, which acks each window
//   many-to-one  every rank but 0 keeps `window` requests of --mr-bytes in flight to rank 0,
//                which answers each with --mr-reply-bytes: requests per second
#include "apps/common/logging.hpp"
#include "src/runtime/mpi_check.hpp"

#include <CLI/CLI.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

namespace {

struct options {
  std::string pattern = "all";
  std::size_t min_bytes = 8;
  std::size_t max_bytes = std::size_t{16} << 20;
  int iterations = 1000;
  int warmup = 100;
  bool rewrite = false;
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
  double value;  // µs (latency), MB/s (bandwidth), requests/s (many-to-one)
};

void latency(const mpi_session& mpi, const options& o, std::vector<row>& rows) {
  std::vector<char> buf(o.max_bytes);
  for (auto bytes : sizes(o)) {
    const int n = iterations_for(o, bytes);
    std::vector<double> t;
    OFFLOAD_MPI_CHECK(MPI_Barrier(MPI_COMM_WORLD));
    for (int i = -o.warmup; i < n; ++i) {
      if (o.rewrite && mpi.rank() == 0) std::fill_n(buf.data(), bytes, char(i));
      const double t0 = MPI_Wtime();
      if (mpi.rank() == 0) {
        OFFLOAD_MPI_CHECK(MPI_Send(buf.data(), int(bytes), MPI_BYTE, 1, 1, MPI_COMM_WORLD));
        OFFLOAD_MPI_CHECK(MPI_Recv(buf.data(), int(bytes), MPI_BYTE, 1, 1, MPI_COMM_WORLD, MPI_STATUS_IGNORE));
      } else if (mpi.rank() == 1) {
        OFFLOAD_MPI_CHECK(MPI_Recv(buf.data(), int(bytes), MPI_BYTE, 0, 1, MPI_COMM_WORLD, MPI_STATUS_IGNORE));
        OFFLOAD_MPI_CHECK(MPI_Send(buf.data(), int(bytes), MPI_BYTE, 0, 1, MPI_COMM_WORLD));
      }
      if (i >= 0) t.push_back((MPI_Wtime() - t0) / 2);
    }
    rows.push_back({"latency", bytes, 2, median(t) * 1e6});
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
  app.add_option("--pattern", o.pattern, "what to measure")
      ->check(CLI::IsMember({"all", "latency", "bandwidth", "many-to-one"}));
  app.add_option("--min-bytes", o.min_bytes, "smallest message")
      ->check(CLI::Range(std::size_t{1}, std::size_t{1} << 30));
  app.add_option("--max-bytes", o.max_bytes, "largest message (sizes double from the smallest)")
      ->check(CLI::Range(std::size_t{1}, std::size_t{1} << 30));
  app.add_option("--iterations", o.iterations, "round trips per size at most (fewer for large sizes)")
      ->check(CLI::Range(1, 1000000));
  app.add_option("--warmup", o.warmup, "untimed round trips per size")->check(CLI::Range(0, 1000000));
  app.add_flag("--rewrite", o.rewrite,
               "latency: rank 0 writes its send buffer afresh before each round trip (untimed), as an event loop "
               "writes fresh inputs");
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
    if (o.pattern == "all" || o.pattern == "latency") latency(mpi, o, rows);
    if (o.pattern == "all" || o.pattern == "bandwidth") bandwidth(mpi, o, rows);
    if (o.pattern == "all" || o.pattern == "many-to-one") many_to_one(mpi, o, rows);
    if (mpi.rank() == 0) {
      std::printf("%-12s %10s %6s %14s\n", "pattern", "bytes", "ranks", "value");
      for (const auto& r : rows)
        std::printf("%-12s %10zu %6d %14.2f %s\n", r.pattern.c_str(), r.bytes, r.ranks, r.value,
                    r.pattern == "latency"     ? "us (half round trip, median)"
                    : r.pattern == "bandwidth" ? "MB/s (median)"
                                               : "requests/s (median)");
      if (!o.json.empty()) {
        std::ofstream f(o.json);
        if (!f) throw std::runtime_error("cannot write --json file '" + o.json + "'");
        f << "{\"rows\": [\n";
        for (std::size_t i = 0; i < rows.size(); ++i)
          f << "  {\"pattern\": \"" << rows[i].pattern << "\", \"bytes\": " << rows[i].bytes
            << ", \"ranks\": " << rows[i].ranks << ", \"value\": " << rows[i].value << ", \"unit\": \""
            << (rows[i].pattern == "latency"     ? "us"
                : rows[i].pattern == "bandwidth" ? "MB/s"
                                                 : "requests/s")
            << "\"}" << (i + 1 < rows.size() ? "," : "") << "\n";
        f << "]}\n";
      }
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "offload-pingpong: %s\n", e.what());
    MPI_Abort(MPI_COMM_WORLD, 1);
  }
  return 0;
}
