// offload-serve: a gRPC receiver service, no MPI. Transmitters reach it with
//   offload-run --transport grpc --connect HOST:PORT[,HOST:PORT...]   (with or without mpirun)
// and KServe v2 clients (Triton's, or any) with --kserve HOST:PORT, alone or beside --listen.
// It serves until --peers sessions have ended (0: until SIGINT or SIGTERM), then prints what it did.
#include "apps/common/logging.hpp"
#if OFFLOAD_WITH_METRICS
#include "apps/common/metrics.hpp"
#endif
#include "apps/common/options.hpp"
#include "apps/common/process.hpp"

#include <offload/grpc.hpp>
#if OFFLOAD_WITH_KSERVE
#include <offload/kserve.hpp>
#endif
#include <offload/receiver.hpp>
#include <offload/runtime.hpp>

#include <spdlog/spdlog.h>

#include <sys/resource.h>

#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>

namespace {

/// A shared service: --peers counts the sessions it served, not every client that connected.
offload::receiver_config service_settings(const offload::app::options& o) {
  auto cfg = offload::app::receiver_settings(o);
  cfg.count_every_peer = false;
  return cfg;
}

/// SIGHUP: the tokens file again; sessions already open keep their client.
void reload_tokens(const offload::app::options& o) {
  if (!o.tokens) {
    std::printf("offload-serve: SIGHUP: no --tokens file to re-read\n");
    std::fflush(stdout);
    return;
  }
  try {
    o.tokens->reload();
    std::printf("offload-serve: SIGHUP: re-read %s: %zu client(s)\n", o.tokens->path().c_str(), o.tokens->size());
    std::fflush(stdout);
  } catch (const std::exception& e) {
    spdlog::error("offload-serve: SIGHUP: {}; the tokens in use stay as they were", e.what());
  }
}

}  // namespace

int main(int argc, char** argv) {
  offload::app::options o;
  std::string listen;
  std::string kserve;
  std::uint64_t peers = 0;
  std::string port_file;
  double drain_timeout_s = 30;
  CLI::App app{
      "offload-serve: a receiver reached over gRPC (offload-run --transport grpc --connect HOST:PORT) and, with\n"
      "--kserve, by KServe v2 clients (Triton's tritonclient, perf_analyzer, SonicTriton). No MPI: start it like\n"
      "any server."};
  offload::app::add_receiver_options(app, o);
  app.add_option("--listen", listen,
                 "HOST:PORT to listen on for transmitters; port 0 picks a free one (see --port-file)");
  app.add_option("--kserve", kserve,
                 "HOST:PORT to serve the KServe v2 protocol on (gRPC), alone or beside --listen: the kernels that "
                 "declare their tensors are its models; port 0 picks a free one (see --port-file)");
  app.add_option("--peers", peers,
                 "transmitter sessions to serve before exiting (a session counts once its handshake succeeded and "
                 "it sent a request or said goodbye; KServe v2 clients' sessions are not counted); 0: until SIGINT "
                 "or SIGTERM")
      ->check(CLI::Range(std::uint64_t{0}, std::uint64_t{1} << 40));
  app.add_option("--port-file", port_file,
                 "write the port listened on to this file once listening (with --listen and --kserve, two lines: "
                 "--listen's port, then --kserve's; then --metrics' port)");
  app.add_option("--drain-timeout", drain_timeout_s,
                 "seconds a SIGTERM's graceful drain may take: not ready at once (KServe ServerReady, "
                 "/v2/health/ready), new connections refused, new requests answered busy, what is in flight "
                 "answered, then exit 0 (1 when the time is up first); a second SIGTERM stops at once; 0: SIGTERM "
                 "stops at once, as SIGINT does")
      ->check(CLI::Range(0.0, 86400.0));
  try {
    app.parse(argc, argv);
    offload::app::finish_receiver_options(app, o);
    if (listen.empty() && kserve.empty()) throw std::invalid_argument("give --listen, --kserve or both");
    if (!listen.empty()) offload::app::check_address("--listen", listen, true);
    if (!kserve.empty()) offload::app::check_address("--kserve", kserve, true);
#if !OFFLOAD_WITH_KSERVE
    if (!kserve.empty()) throw std::invalid_argument("--kserve: this build has no gRPC, so no KServe v2 front end");
#endif
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const std::invalid_argument& e) {
    std::fprintf(stderr, "offload-serve: %s\n", e.what());
    return 2;
  }
  offload::app::setup_logging(o.log_level, "offload-serve");

  // SIGINT and SIGTERM are taken by sigtimedwait below, in every thread started after this.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGHUP);  // (re-reads --tokens)
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  offload::kernel_registry kernels;
  try {
    kernels = offload::app::kernel_set(o, offload::app::available_kernels(o));
  } catch (const std::exception& e) {  // std::invalid_argument, offload::plugin_error
    std::fprintf(stderr, "offload-serve: %s\n", e.what());
    return 2;
  }
  try {
    offload::progress_options progress;
    progress.mpi = false;
    progress.max_sleep = std::chrono::microseconds(o.idle_sleep_us);
    progress.spin = std::chrono::microseconds(o.spin_us);
    progress.yield = std::chrono::microseconds(o.yield_us);
    progress.adaptive = o.wait_policy == "adaptive";  // the others poll for fixed times
    offload::runtime rt(progress);
    const std::size_t expected = peers == 0 ? std::numeric_limits<std::size_t>::max() : std::size_t(peers);
    std::vector<offload::transport> links;
    if (!listen.empty()) links.emplace_back(offload::app::grpc_listen_of(o, listen));
#if OFFLOAD_WITH_KSERVE
    if (!kserve.empty())
      links.emplace_back(offload::kserve_listen{
          .address = kserve, .memory_bytes = o.grpc_memory, .security = offload::app::server_security_of(o)});
#endif
    offload::receiver rx(rt, kernels, offload::app::receiver_link(o, offload::listen_all{links}), expected,
                         service_settings(o));
    const auto s0 = rx.stats();
    const auto ports = rx.ports();
    std::string names;
    for (const auto& n : kernels.names()) names += (names.empty() ? "" : ", ") + n;
    std::string where;
    std::size_t next = 0;
    for (const auto* a : {&listen, &kserve}) {
      if (a->empty()) continue;
      where += std::string(where.empty() ? "" : " and ") + (a == &kserve ? "KServe v2 on " : "transmitters on ") +
               a->substr(0, a->rfind(':')) + ":" + std::to_string(ports.at(next++));
    }
    std::printf(
        "offload-serve: listening for %s (%s), %zu completion-queue thread(s), backend %s, %zu kernel "
        "thread(s), credits %u, kernels: %s\n",
        where.c_str(), offload::app::server_security_of(o).describe().c_str(), o.grpc_threads,
        (s0.backend == "emulated" ? s0.backend_description : s0.backend).c_str(), o.receiver_threads, o.credits,
        names.c_str());
    std::fflush(stdout);
    std::vector<int> written = ports;
#if OFFLOAD_WITH_METRICS
    std::unique_ptr<offload::app::metrics_server> metrics;
    if (!o.metrics.empty()) {
      metrics = std::make_unique<offload::app::metrics_server>(
          o.metrics, offload::app::metrics_source{[&rx] { return rx.stats(); }, [&rx] { return rx.sessions(); }});
      std::printf("offload-serve: metrics and health on http://%s:%d/metrics\n",
                  o.metrics.substr(0, o.metrics.rfind(':')).c_str(), metrics->port());
      std::fflush(stdout);
      written.push_back(metrics->port());
    }
#endif
    if (!port_file.empty()) {
      std::string text;
      for (auto p : written) {
        if (!text.empty()) text += '\n';
        text += std::to_string(p);
      }
      offload::app::write_file_atomically(port_file, text);
    }
    const double cpu0 = offload::app::process_cpu_seconds();
    const auto t0 = std::chrono::steady_clock::now();
    const timespec tick{0, 100'000'000};
    int signal = -1;
    bool draining = false, drained = false;
    auto drain_deadline = std::chrono::steady_clock::time_point::max();
    while (!rx.wait_for(std::chrono::milliseconds(0))) {
      signal = sigtimedwait(&stop_signals, nullptr, &tick);
      if (signal == SIGHUP) {
        reload_tokens(o);
        signal = -1;
      }
      if (signal == SIGTERM && !draining && drain_timeout_s > 0) {
        draining = true;
        signal = -1;
        rx.drain();
#if OFFLOAD_WITH_METRICS
        if (metrics) metrics->set_ready(false);
#endif
        drain_deadline = std::chrono::steady_clock::now() + std::chrono::duration_cast<std::chrono::nanoseconds>(
                                                                std::chrono::duration<double>(drain_timeout_s));
        std::printf(
            "offload-serve: SIGTERM: draining (%zu request(s) in flight, at most %.1f s; a second SIGTERM "
            "stops at once)\n",
            rx.in_flight(), drain_timeout_s);
        std::fflush(stdout);
      }
      if (signal > 0) break;
      if (draining) {
        if (rx.in_flight() == 0) {
          drained = true;
          break;
        }
        if (std::chrono::steady_clock::now() >= drain_deadline) break;
      }
    }
    const auto s = rx.stats();
    const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double cpu = offload::app::process_cpu_seconds() - cpu0;
    const std::size_t left = draining && !drained ? rx.in_flight() : 0;
    const std::string why = drained    ? "drained"
                            : draining ? (signal > 0 ? "stopped by a second SIGTERM while draining" : "drain timed out")
                            : signal > 0 ? "stopped by a signal"
                                         : "served every session";
    std::printf("offload-serve: %s after %.1f s: %s, cpu %.3f s (%.1f us per request)\n", why.c_str(), wall,
                offload::counters_text(s).c_str(), cpu, s.requests ? 1e6 * cpu / double(s.requests) : 0.0);
    if (draining && !drained)
      std::printf("offload-serve: %zu request(s) were still in flight (their transmitters fall back)\n", left);
    // Per model, as /metrics has them (nv_inference_*), and the calls refused for want of a token.
    for (const auto& line : offload::app::kernel_lines(s)) std::printf("offload-serve: %s\n", line.c_str());
    std::fflush(stdout);
    if (!port_file.empty()) std::filesystem::remove(port_file);
    if (draining && !drained) return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "offload-serve: %s\n", e.what());
    return 1;
  }
  return 0;
}
