// Open MPI alone, no mpi-offload code: the MPI call pattern of `offload-run --serve` and
// `--connect` (tests/mpi/faults.sh case 4, results/reliability.md), to tell Open MPI's behaviour
// from ours. Built and driven by scripts/repro/ompi_service.sh; not part of the suite.
//   ompi_service serve PORT_FILE IDLE_MS   one rank: MPI_Open_port, then MPI_Comm_accept in a
//       loop on the main thread; each connected job is served by its own thread (MPI_Improbe /
//       MPI_Mrecv / MPI_Isend echo, under MPI_THREAD_MULTIPLE) until each of its ranks says bye
//       or is silent for IDLE_MS (then it is dropped); then MPI_Comm_free of the merged
//       communicator and MPI_Comm_disconnect; the thread is joined at the next connection.
//       Prints "job N done: RSS_KIB" after each job (VmRSS of this process).
//   ompi_service client PORT_FILE MESSAGES BYTES   every rank sends MESSAGES messages of BYTES
//       to the server, four at a time, and waits for each echo, then says bye and disconnects;
//       MESSAGES -1: it connects, then waits in a receive nobody sends to (until killed).
//   ompi_service stop PORT_FILE   asks the server to finish.
#include <mpi.h>

#include <malloc.h>
#include <sched.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

namespace {

constexpr int data_tag = 1, bye_tag = 2;

void check(int rc, const char* what) {
  if (rc == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING] = {};
  int len = 0;
  MPI_Error_string(rc, text, &len);
  std::fprintf(stderr, "ompi_service: %s failed: %s\n", what, text);
  std::exit(2);
}

long rss_kib() {
  std::ifstream f("/proc/self/status");
  std::string key;
  long value = 0;
  while (f >> key) {
    if (key == "VmRSS:") {
      f >> value;
      return value;
    }
    f.ignore(1 << 12, '\n');
  }
  return -1;
}

std::string read_port(const char* file) {
  for (int i = 0; i < 600; ++i) {
    std::ifstream f(file);
    std::string line;
    if (f && std::getline(f, line) && !line.empty()) return line;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  std::fprintf(stderr, "ompi_service: no port in %s\n", file);
  std::exit(2);
}

/// One connected job: echo until every rank said bye or was silent for idle_ms. Non-blocking
/// throughout, as our receiver (src/transport/mpi_endpoint.cpp): MPI_Improbe, MPI_Imrecv,
/// MPI_Isend, MPI_Test; a receive or send that never completes is abandoned with its peer.
void serve_job(int job, MPI_Comm merged, int ranks, int idle_ms) {
  using clock = std::chrono::steady_clock;
  struct pending {
    MPI_Request request = MPI_REQUEST_NULL;
    std::vector<char> buffer;
    int peer = 0, tag = 0;
    bool receive = false;
  };
  std::vector<clock::time_point> last(ranks + 1, clock::now());
  std::vector<bool> live(ranks + 1, true);
  live[0] = false;  // this rank
  int left = ranks;
  std::vector<pending> ops;  // receives and echoes in progress
  std::vector<pending> abandoned;
  while (left > 0) {
    int flag = 0;
    MPI_Message msg;
    MPI_Status st;
    check(MPI_Improbe(MPI_ANY_SOURCE, MPI_ANY_TAG, merged, &flag, &msg, &st), "MPI_Improbe");
    const auto now = clock::now();
    if (flag) {
      int bytes = 0;
      MPI_Get_count(&st, MPI_BYTE, &bytes);
      pending p{MPI_REQUEST_NULL, std::vector<char>(static_cast<std::size_t>(bytes)), st.MPI_SOURCE, st.MPI_TAG, true};
      check(MPI_Imrecv(p.buffer.data(), bytes, MPI_BYTE, &msg, &p.request), "MPI_Imrecv");
      last[p.peer] = now;
      ops.push_back(std::move(p));
    }
    for (std::size_t i = 0; i < ops.size();) {
      int done = 0;
      check(MPI_Test(&ops[i].request, &done, MPI_STATUS_IGNORE), "MPI_Test");
      if (!done) {
        ++i;
        continue;
      }
      pending p = std::move(ops[i]);
      ops.erase(ops.begin() + static_cast<std::ptrdiff_t>(i));
      last[p.peer] = now;
      if (!p.receive) continue;  // an echo went out
      if (p.tag == bye_tag) {
        if (live[p.peer]) --left;
        live[p.peer] = false;
        continue;
      }
      p.receive = false;
      check(
          MPI_Isend(p.buffer.data(), static_cast<int>(p.buffer.size()), MPI_BYTE, p.peer, data_tag, merged, &p.request),
          "MPI_Isend");
      ops.push_back(std::move(p));
    }
    for (int r = 1; r <= ranks; ++r)
      if (live[r] && now - last[r] > std::chrono::milliseconds(idle_ms)) {
        std::printf("job %d: rank %d silent for %d ms: dropping it\n", job, r, idle_ms);
        std::fflush(stdout);
        live[r] = false;
        --left;
        for (std::size_t i = 0; i < ops.size();)
          if (ops[i].peer == r) {
            abandoned.push_back(std::move(ops[i]));  // never completes: keep its buffer
            ops.erase(ops.begin() + static_cast<std::ptrdiff_t>(i));
          } else {
            ++i;
          }
      }
    if (!flag) sched_yield();
  }
  if (!abandoned.empty())
    std::printf("job %d: %zu operation(s) with dropped ranks never completed\n", job, abandoned.size());
  static std::vector<pending> kept;  // their buffers stay allocated until exit, as in our receiver
  for (auto& p : abandoned) kept.push_back(std::move(p));
}

int serve(const char* port_file, int idle_ms) {
  char port[MPI_MAX_PORT_NAME] = {};
  check(MPI_Open_port(MPI_INFO_NULL, port), "MPI_Open_port");
  {
    std::ofstream tmp(std::string(port_file) + ".tmp");
    tmp << port << "\n";
  }
  std::rename((std::string(port_file) + ".tmp").c_str(), port_file);
  std::printf("serving on %s: RSS %ld KiB\n", port, rss_kib());
  std::fflush(stdout);
  std::thread session;
  for (int job = 1;; ++job) {
    MPI_Comm inter = MPI_COMM_NULL, merged = MPI_COMM_NULL;
    check(MPI_Comm_accept(port, MPI_INFO_NULL, 0, MPI_COMM_WORLD, &inter), "MPI_Comm_accept");
    if (session.joinable()) session.join();
    check(MPI_Comm_set_errhandler(inter, MPI_ERRORS_RETURN), "MPI_Comm_set_errhandler");
    check(MPI_Intercomm_merge(inter, 0, &merged), "MPI_Intercomm_merge");
    check(MPI_Comm_set_errhandler(merged, MPI_ERRORS_RETURN), "MPI_Comm_set_errhandler");
    int ranks = 0;
    check(MPI_Bcast(&ranks, 1, MPI_INT, 1, merged), "MPI_Bcast");
    if (ranks <= 0) {  // stop
      check(MPI_Comm_free(&merged), "MPI_Comm_free");
      check(MPI_Comm_disconnect(&inter), "MPI_Comm_disconnect");
      std::printf("stopped after %d job(s): RSS %ld KiB\n", job - 1, rss_kib());
      break;
    }
    session = std::thread([=]() mutable {
      serve_job(job, merged, ranks, idle_ms);
      check(MPI_Comm_free(&merged), "MPI_Comm_free");
      check(MPI_Comm_disconnect(&inter), "MPI_Comm_disconnect");
      malloc_trim(0);  // as offload-run: what was freed goes back to the system
      std::printf("job %d done: RSS %ld KiB\n", job, rss_kib());
      std::fflush(stdout);
    });
  }
  if (session.joinable()) session.join();
  MPI_Close_port(port);
  return 0;
}

int client(const char* port_file, int messages, int bytes, bool stop) {
  int rank = 0, size = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  std::string port;
  if (rank == 0) port = read_port(port_file);
  port.resize(MPI_MAX_PORT_NAME);
  MPI_Bcast(port.data(), MPI_MAX_PORT_NAME, MPI_CHAR, 0, MPI_COMM_WORLD);
  MPI_Comm inter = MPI_COMM_NULL, merged = MPI_COMM_NULL;
  check(MPI_Comm_connect(port.c_str(), MPI_INFO_NULL, 0, MPI_COMM_WORLD, &inter), "MPI_Comm_connect");
  check(MPI_Comm_set_errhandler(inter, MPI_ERRORS_RETURN), "MPI_Comm_set_errhandler");
  check(MPI_Intercomm_merge(inter, 1, &merged), "MPI_Intercomm_merge");
  int ranks = stop ? 0 : size;
  check(MPI_Bcast(&ranks, 1, MPI_INT, 1, merged), "MPI_Bcast");
  if (!stop && messages < 0) {  // connected, then quiet: a receive nobody sends to
    char byte = 0;
    check(MPI_Recv(&byte, 1, MPI_BYTE, 0, data_tag, merged, MPI_STATUS_IGNORE), "MPI_Recv");
  } else if (!stop) {
    // Four echoes in flight per rank, as offload-run's transmitter keeps several requests out.
    constexpr int window = 4;
    const std::vector<char> out(static_cast<std::size_t>(bytes), static_cast<char>(rank));
    std::vector<std::vector<char>> in(window, std::vector<char>(out.size()));
    std::vector<MPI_Request> sends(window, MPI_REQUEST_NULL), receives(window, MPI_REQUEST_NULL);
    int started = 0, finished = 0;
    for (; started < std::min(window, messages); ++started) {
      check(MPI_Irecv(in[started].data(), bytes, MPI_BYTE, 0, data_tag, merged, &receives[started]), "MPI_Irecv");
      check(MPI_Isend(out.data(), bytes, MPI_BYTE, 0, data_tag, merged, &sends[started]), "MPI_Isend");
    }
    while (finished < messages) {
      int slot = 0;
      check(MPI_Waitany(window, receives.data(), &slot, MPI_STATUS_IGNORE), "MPI_Waitany");
      check(MPI_Wait(&sends[slot], MPI_STATUS_IGNORE), "MPI_Wait");
      if (in[slot] != out) {
        std::fprintf(stderr, "ompi_service: rank %d: wrong echo\n", rank);
        return 1;
      }
      ++finished;
      if (started < messages) {
        check(MPI_Irecv(in[slot].data(), bytes, MPI_BYTE, 0, data_tag, merged, &receives[slot]), "MPI_Irecv");
        check(MPI_Isend(out.data(), bytes, MPI_BYTE, 0, data_tag, merged, &sends[slot]), "MPI_Isend");
        ++started;
      }
    }
    check(MPI_Send(nullptr, 0, MPI_BYTE, 0, bye_tag, merged), "MPI_Send");
  }
  check(MPI_Comm_free(&merged), "MPI_Comm_free");
  check(MPI_Comm_disconnect(&inter), "MPI_Comm_disconnect");
  if (rank == 0 && !stop) std::printf("client: %d rank(s) x %d echoes of %d B done\n", size, messages, bytes);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string mode = argc > 2 ? argv[1] : "";
  if (!((mode == "serve" && argc == 4) || (mode == "client" && argc == 5) || (mode == "stop" && argc == 3))) {
    std::fprintf(stderr,
                 "usage: ompi_service serve PORT_FILE IDLE_MS | client PORT_FILE MESSAGES BYTES | stop PORT_FILE\n");
    return 2;
  }
  std::signal(SIGPIPE, SIG_IGN);  // as offload-run: a write to a killed peer must not end the service
  int provided = 0;
  MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided);
  if (provided < MPI_THREAD_MULTIPLE) {
    std::fprintf(stderr, "ompi_service: MPI_THREAD_MULTIPLE not provided\n");
    MPI_Abort(MPI_COMM_WORLD, 2);
  }
  int rc = 0;
  if (mode == "serve")
    rc = serve(argv[2], std::atoi(argv[3]));
  else if (mode == "client")
    rc = client(argv[2], std::atoi(argv[3]), std::atoi(argv[4]), false);
  else
    rc = client(argv[2], 0, 0, true);
  MPI_Finalize();
  return rc;
}
