#include "service.hpp"

#include "apps/common/process.hpp"

#include <offload/mpi.hpp>
#include <offload/receiver.hpp>
#if OFFLOAD_WITH_METRICS
#include "apps/common/metrics.hpp"
#endif

#include <spdlog/spdlog.h>

#include <unistd.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <set>
#include <stdexcept>
#include <thread>
#include <vector>

namespace offload::app {
namespace {

/// Throws std::runtime_error with MPI's text when `rc` is not MPI_SUCCESS.
void check(int rc, const std::string& what) {
  if (rc == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING] = {};
  int len = 0;
  MPI_Error_string(rc, text, &len);
  throw std::runtime_error(what + " failed: " + std::string(text, static_cast<std::size_t>(len)));
}

/// Rank 0's port name of the service (file or name server), known to every rank afterwards.
/// The service may not be up yet: rank 0 retries until --connect-timeout.
std::string find_port(runtime& rt, const options& o) {
  std::vector<char> port(MPI_MAX_PORT_NAME, '\0');
  std::string problem;
  if (rt.rank() == 0) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(o.connect_timeout_s);
    for (;;) {
      if (!o.service_name.empty()) {
        if (MPI_Lookup_name(o.service_name.c_str(), MPI_INFO_NULL, port.data()) == MPI_SUCCESS) break;
        problem = "no service published as '" + o.service_name +
                  "' (is it up, and ompi-server given to every mpirun with --ompi-server?)";
      } else {
        std::ifstream f(o.port_file);
        std::string line;
        if (f && std::getline(f, line) && !line.empty()) {
          if (line.size() >= port.size()) {
            problem =
                "--port-file " + o.port_file + " holds " + std::to_string(line.size()) + " characters, not a port name";
            break;
          }
          std::copy(line.begin(), line.end(), port.begin());
          break;
        }
        problem = "cannot read a port name from --port-file " + o.port_file + " (is the receiver service up?)";
      }
      if (std::chrono::steady_clock::now() >= deadline) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    if (port[0] != '\0') problem.clear();
  }
  int ok = problem.empty() ? 1 : 0;
  check(MPI_Bcast(&ok, 1, MPI_INT, 0, offload::comm_of(rt)), "MPI_Bcast");
  if (!ok) throw service_not_found(rt.rank() == 0 ? problem : "rank 0 found no service port");
  check(MPI_Bcast(port.data(), MPI_MAX_PORT_NAME, MPI_CHAR, 0, offload::comm_of(rt)), "MPI_Bcast");
  return port.data();
}

std::string stats_line(int rank, int session, int transmitters, const receiver_stats& s) {
  return "receiver rank " + std::to_string(rank) + ": session " + std::to_string(session) + " (" +
         std::to_string(transmitters) + " transmitter(s)) done: " + counters_text(s);
}

}  // namespace

service_link connect_service(runtime& rt, const options& o, service_request what) {
  const std::string port = find_port(rt, o);
  service_link link;
  check(MPI_Comm_connect(port.c_str(), MPI_INFO_NULL, 0, offload::comm_of(rt), &link.inter),
        "MPI_Comm_connect to " + port);
  check(MPI_Comm_set_errhandler(link.inter, MPI_ERRORS_RETURN), "MPI_Comm_set_errhandler");
  check(MPI_Comm_remote_size(link.inter, &link.receivers), "MPI_Comm_remote_size");
  check(MPI_Intercomm_merge(link.inter, 1, &link.merged), "MPI_Intercomm_merge");  // after the receivers
  check(MPI_Comm_set_errhandler(link.merged, MPI_ERRORS_RETURN), "MPI_Comm_set_errhandler");
  int request[2] = {static_cast<int>(what), rt.size()};
  check(MPI_Bcast(request, 2, MPI_INT, link.receivers, link.merged), "MPI_Bcast of the request");
  return link;
}

void disconnect_service(service_link& link) {
  if (link.merged != MPI_COMM_NULL) check(MPI_Comm_free(&link.merged), "MPI_Comm_free");
  if (link.inter != MPI_COMM_NULL) check(MPI_Comm_disconnect(&link.inter), "MPI_Comm_disconnect");
}

int serve(runtime& rt, const options& o, const kernel_registry& kernels) {
  const int rank = rt.rank();
  std::vector<char> port(MPI_MAX_PORT_NAME, '\0');
  if (rank == 0) {
    check(MPI_Open_port(MPI_INFO_NULL, port.data()), "MPI_Open_port");
    if (!o.port_file.empty()) app::write_file_atomically(o.port_file, port.data());
    if (!o.service_name.empty())
      check(MPI_Publish_name(o.service_name.c_str(), MPI_INFO_NULL, port.data()),
            "MPI_Publish_name('" + o.service_name + "') (is ompi-server running, and given with --ompi-server?)");
    std::printf("offload-run: serving %d receiver rank(s) on port %s%s%s\n", rt.size(), port.data(),
                o.port_file.empty() ? "" : (", port file " + o.port_file).c_str(),
                o.service_name.empty() ? "" : (", name " + o.service_name).c_str());
    std::fflush(stdout);
  }

  const receiver_config base = receiver_settings(o);

  std::mutex mutex;
  // The sessions' threads; each is joined at the next connection after it ended (a finished,
  // unjoined thread keeps its stack and TLS: about 6 KiB resident per job, measured), the rest
  // at the end.
  struct session_thread {
    std::thread thread;
    std::shared_ptr<std::atomic<bool>> ended = std::make_shared<std::atomic<bool>>(false);
  };
  std::vector<session_thread> sessions;
  std::size_t served = 0;
  receiver_stats total;            // of the sessions that ended (guarded by mutex)
  std::set<const receiver*> live;  // the sessions' receivers now (guarded by mutex)
  int failures = 0;
#if OFFLOAD_WITH_METRICS
  // --metrics: each rank on its own port (PORT + rank; port 0: any free one), its sessions summed.
  std::unique_ptr<metrics_server> metrics;
  if (!o.metrics.empty()) {
    const auto colon = o.metrics.rfind(':');
    const int base_port = std::stoi(o.metrics.substr(colon + 1));
    const std::string at = o.metrics.substr(0, colon + 1) + std::to_string(base_port > 0 ? base_port + rank : 0);
    metrics = std::make_unique<metrics_server>(at, metrics_source{[&] {
                                                                    std::lock_guard lock(mutex);
                                                                    receiver_stats s = total;
                                                                    for (const auto* rx : live)
                                                                      s = stats_plus(std::move(s), rx->stats());
                                                                    return s;
                                                                  },
                                                                  [&] {
                                                                    std::lock_guard lock(mutex);
                                                                    std::vector<session_info> out;
                                                                    for (const auto* rx : live)
                                                                      for (auto& x : rx->sessions())
                                                                        out.push_back(std::move(x));
                                                                    return out;
                                                                  }});
    std::printf("receiver rank %d: metrics and health on http://%s:%d/metrics\n", rank,
                o.metrics.substr(0, colon).c_str(), metrics->port());
    std::fflush(stdout);
  }
#endif
  for (int id = 1;; ++id) {
    MPI_Comm inter = MPI_COMM_NULL, merged = MPI_COMM_NULL;
    check(MPI_Comm_accept(port.data(), MPI_INFO_NULL, 0, offload::comm_of(rt), &inter), "MPI_Comm_accept");
    std::erase_if(sessions, [](session_thread& t) {
      if (!t.ended->load()) return false;
      t.thread.join();
      return true;
    });
    check(MPI_Comm_set_errhandler(inter, MPI_ERRORS_RETURN), "MPI_Comm_set_errhandler");
    check(MPI_Intercomm_merge(inter, 0, &merged), "MPI_Intercomm_merge");  // receivers first
    check(MPI_Comm_set_errhandler(merged, MPI_ERRORS_RETURN), "MPI_Comm_set_errhandler");
    int request[2] = {0, 0};
    check(MPI_Bcast(request, 2, MPI_INT, rt.size(), merged), "MPI_Bcast of the request");
    if (request[0] == static_cast<int>(service_request::stop) || request[0] != static_cast<int>(service_request::run) ||
        request[1] < 1) {
      const bool stop = request[0] == static_cast<int>(service_request::stop);
      if (!stop && rank == 0)
        spdlog::error("receiver service: connection {} asked for {} with {} rank(s): not a request; dropped", id,
                      request[0], request[1]);
      check(MPI_Comm_free(&merged), "MPI_Comm_free");
      check(MPI_Comm_disconnect(&inter), "MPI_Comm_disconnect");
      if (stop) {
        if (rank == 0) std::printf("offload-run: stop requested; finishing %zu session(s)\n", sessions.size());
        break;
      }
      continue;
    }
    const int transmitters = request[1];
    if (rank == 0) {
      std::printf("offload-run: session %d: a job of %d transmitter(s) connected\n", id, transmitters);
      std::fflush(stdout);
    }
    // Each session is served by its own receiver on the merged communicator; this thread
    // frees and disconnects it when every transmitter of that job said goodbye.
    ++served;
    sessions.emplace_back();
    sessions.back().thread = std::thread([&, inter, merged, id, transmitters, ended = sessions.back().ended]() mutable {
      struct mark_ended {
        std::atomic<bool>& ended;
        ~mark_ended() { ended = true; }
      } mark{*ended};
      receiver_stats s;
      try {
        receiver_config cfg = base;
        {
          receiver rx(rt, kernels, receiver_link(o, mpi_link{{}, merged, o.blocking_receive_below, o.parts_from}),
                      std::size_t(transmitters), cfg);
          {
            std::lock_guard lock(mutex);
            live.insert(&rx);
          }
          try {
            s = rx.wait();
          } catch (...) {
            std::lock_guard lock(mutex);
            live.erase(&rx);
            throw;
          }
          std::lock_guard lock(mutex);  // (its counters move from live to total at once)
          live.erase(&rx);
          total = stats_plus(std::move(total), s);
        }  // detached from the progress thread before the communicator goes
        service_link link{inter, merged, 0};
        disconnect_service(link);
#if defined(__GLIBC__)
        malloc_trim(0);  // what the session and its job's MPI state freed, back to the system
#endif
      } catch (const std::exception& e) {
        spdlog::error("receiver service: session {}: {}", id, e.what());
        std::lock_guard lock(mutex);
        ++failures;
        return;
      }
      std::lock_guard lock(mutex);
      std::printf("%s\n", stats_line(rank, id, transmitters, s).c_str());
      std::fflush(stdout);
    });
  }
  for (auto& t : sessions) t.thread.join();
  if (rank == 0) {
    if (!o.service_name.empty()) MPI_Unpublish_name(o.service_name.c_str(), MPI_INFO_NULL, port.data());
    MPI_Close_port(port.data());
    if (!o.port_file.empty()) std::filesystem::remove(o.port_file);
  }
  std::printf("receiver rank %d: served %zu session(s): %s\n", rank, served, counters_text(total).c_str());
  for (const auto& line : kernel_lines(total)) std::printf("receiver rank %d: %s\n", rank, line.c_str());
  std::fflush(stdout);
  return failures == 0 && total.handshake_failures == 0 ? 0 : 1;
}

}  // namespace offload::app
