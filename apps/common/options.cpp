#include "options.hpp"

#include "logging.hpp"
#include "workload.hpp"

#include <offload/plugin.hpp>
#if OFFLOAD_WITH_MODELS
#include <offload/models.hpp>
#endif

#include <algorithm>
#include <cctype>
#include <cmath>
#include <fstream>
#include <map>
#include <sstream>

namespace offload::app {

kernel_registry available_kernels(const options& o) {
  kernel_registry all = kernel_registry::builtin();
  for (const auto& path : o.plugins) load_plugin(all, path);
  if (!o.model_repository.empty()) {
#if OFFLOAD_WITH_MODELS
    model_repository::load(o.model_repository).add_to(all);
#else
    throw std::invalid_argument(
        "--model-repository: this build has no model repositories (configured without gRPC "
        "and protobuf)");
#endif
  }
  if (o.workload != "single")  // a workload file's model stand-ins
    all.add(model_kernels(make_workload(o.workload, all, {}, 0, 0), o.cpu_work == "emulated"));
  return all;
}

kernel_registry kernel_set(const options& o, const kernel_registry& available) {
  return o.kernel_set.empty() ? available : available.subset(o.kernel_set);
}

link_emulation emulation(const options& o) {
  link_emulation e;
  e.latency = std::chrono::nanoseconds(std::llround(o.inject_latency_ms * 1e6));
  e.jitter = std::chrono::nanoseconds(std::llround(o.inject_jitter_ms * 1e6));
  e.bandwidth_bps = o.inject_bandwidth_gbit * 1e9;
  return e;
}

wire_limits limits(const options& o) {
  return {o.max_message_bytes, o.max_products, o.max_name_length};
}

namespace {
/// NAME=N items of a per-kernel flag (CLI::ValidationError naming the bad one).
std::map<std::string, std::uint32_t> per_kernel(const std::vector<std::string>& items, const std::string& flag,
                                                std::uint32_t least) {
  std::map<std::string, std::uint32_t> out;
  for (const auto& item : items) {
    const auto eq = item.find('=');
    const std::string name = item.substr(0, eq);
    const std::string value = eq == std::string::npos ? "" : item.substr(eq + 1);
    std::size_t used = 0;
    unsigned long long n = 0;
    try {
      n = std::stoull(value, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (name.empty() || value.empty() || used != value.size() || value[0] == '-' || n < least || n > UINT32_MAX)
      throw CLI::ValidationError(flag, "'" + item + "' is not NAME=N with N a whole number " + std::to_string(least) +
                                           ".." + std::to_string(UINT32_MAX));
    if (!out.emplace(name, std::uint32_t(n)).second)
      throw CLI::ValidationError(flag, "kernel '" + name + "' is given twice");
  }
  return out;
}
}  // namespace

receiver_stats stats_plus(receiver_stats a, const receiver_stats& b) {
  a = counters_plus(std::move(a), b);
  for (const auto& [name, c] : b.kernels) {
    auto& x = a.kernels[name];
    x.version = c.version;
    x.success += c.success;
    x.failure += c.failure;
    x.inferences += c.inferences;
    x.executions += c.executions;
    x.request_ns += c.request_ns;
    x.queue_ns += c.queue_ns;
    x.input_ns += c.input_ns;
    x.infer_ns += c.infer_ns;
    x.output_ns += c.output_ns;
  }
  a.busy_s += b.busy_s;
  a.unauthenticated += b.unauthenticated;
  return a;
}

std::vector<std::string> kernel_lines(const receiver_stats& s) {
  std::vector<std::string> out;
  for (const auto& [name, c] : s.kernels)
    out.push_back("model " + name + " version " + c.version + ": success " + std::to_string(c.success) + ", failure " +
                  std::to_string(c.failure) + ", inferences " + std::to_string(c.inferences) + ", executions " +
                  std::to_string(c.executions));
  out.push_back("unauthenticated " + std::to_string(s.unauthenticated));
  return out;
}

receiver_config receiver_settings(const options& o) {
  receiver_config cfg;
  cfg.credits = o.credits;
  cfg.threads = o.receiver_threads;
  if (o.backend == "emulated") {
    device_profile p = o.profile_data;
    p.time_scale = o.time_scale;  // the device keeps its ratio to the client CPU
    cfg.custom_backend = emulated_backend(p);
  } else {
    cfg.backend = *backend_from_name(o.backend);  // (--backend is checked against the names)
  }
  cfg.limits = limits(o);
  cfg.idle_timeout = std::chrono::milliseconds(std::llround(o.idle_timeout_ms));
  cfg.max_batch = o.max_batch;
  cfg.preferred_batch = o.preferred_batch;
  cfg.device = o.device;
  cfg.max_wait = std::chrono::microseconds(std::int64_t(o.max_wait_us));
  cfg.max_work = o.max_work;
  cfg.inline_budget = std::chrono::microseconds(std::llround(o.inline_budget_us));
  cfg.max_queue = o.max_queue;
  cfg.max_threads = o.max_threads;
#if OFFLOAD_WITH_MODELS
  // A repository's models bring their scheduling (instances, priority, queue, batching) ...
  if (!o.model_repository.empty()) model_repository::load(o.model_repository).configure(cfg);
#endif
  // ... which the per-kernel flags override.
  for (const auto& [k, v] : per_kernel(o.kernel_instances, "--kernel-instances", 1)) cfg.kernel_instances[k] = v;
  for (const auto& [k, v] : per_kernel(o.kernel_priority, "--kernel-priority", 1)) cfg.kernel_priority[k] = v;
  for (const auto& [k, v] : per_kernel(o.kernel_max_queue, "--kernel-max-queue", 0)) cfg.kernel_max_queue[k] = v;
  return cfg;
}

transmitter_config transmitter_settings(const options& o) {
  transmitter_config cfg;
  cfg.credits = o.credits;
  cfg.timeout = std::chrono::microseconds(std::int64_t(o.timeout_ms * 1e3));
  cfg.policy = o.routing == "least_outstanding" ? routing::least_outstanding : routing::round_robin;
  cfg.limits = limits(o);
  cfg.fallback_threads = o.fallback_threads > 0 ? o.fallback_threads : std::size_t(o.threads);
  cfg.send_deadlines = !o.no_deadlines;
  cfg.handshake_timeout = std::chrono::milliseconds(std::llround(o.handshake_timeout_ms));
  cfg.require_receivers = o.require_receivers;
  return cfg;
}

transport receiver_link(const options& o, transport link) {
  const auto e = emulation(o);
  if (!e.active() && !(o.site_link_gbit > 0)) return link;
  return emulated_link(std::move(link), e, o.site_link_gbit * 1e9);
}

transport transmitter_link(const options& o, transport link) {
  const auto e = emulation(o);
  return e.active() ? emulated_link(std::move(link), e) : link;
}

const std::vector<std::pair<std::string, double>>& distance_presets() {
  static const std::vector<std::pair<std::string, double>> presets = {
      {"same-node", 0.0},  // shared memory, nothing added
      {"same-dc", 0.05},   // 0.1 ms round trip
      {"nearby-dc", 1.0},  // 2 ms round trip
      {"far-dc", 12.5}};   // 25 ms round trip: about half the width of the US
  return presets;
}

void check_address(const std::string& flag, const std::string& address, bool any_port) {
  const auto colon = address.rfind(':');
  const std::string port = colon == std::string::npos ? "" : address.substr(colon + 1);
  int value = -1;
  if (!port.empty() && port.size() <= 5 && port.find_first_not_of("0123456789") == std::string::npos)
    value = std::stoi(port);
  if (colon == 0 || value < (any_port ? 0 : 1) || value > 65535)
    throw std::invalid_argument(flag + " '" + address + "' is not HOST:PORT with a port in " + (any_port ? "0" : "1") +
                                "..65535");
}

void check_run(options& o, const workload& w) {
  if (o.cpu_work == "emulated") {
    if (o.ns_per_iteration > 0 && o.ns_per_iteration != 1.0)
      throw std::invalid_argument(
          "--cpu-work emulated: an iteration is a held ns; --ns-per-iteration, if given, must be 1");
    for (const auto& m : w.modules)
      if (m.cpu_ms > 0 && !m.model)
        throw std::invalid_argument("--cpu-work emulated: module " + m.name + " computes its CPU cost with kernel " +
                                    m.kernel + "; only a workload's models can hold it instead");
  }
  if (o.backend == "emulated" && o.mode == "remote" && o.receivers > 0)
    for (const auto& m : w.modules)
      if (o.profile_data.find(m.kernel) == nullptr)
        throw std::invalid_argument("device profile " + o.profile_data.path + " has no model '" + m.kernel +
                                    "' (module " + m.name + " of workload " + w.name +
                                    "); it has: " + o.profile_data.model_names());
  if (!o.credits_given)
    o.credits = std::uint32_t(std::clamp<std::uint64_t>(std::uint64_t(o.inflight) * w.modules.size(), 8, 1 << 16));
}

offload::server_security server_security_of(const options& o) {
  return {o.tls_cert, o.tls_key, o.tls_client_ca, o.tokens, o.insecure};
}

offload::grpc_listen grpc_listen_of(const options& o, const std::string& address) {
  offload::grpc_listen l{address, o.grpc_threads, o.grpc_memory, server_security_of(o)};
  l.hello_timeout = std::chrono::milliseconds(o.hello_timeout_ms);
  l.write_timeout = std::chrono::milliseconds(o.write_timeout_ms);
  l.max_streams_per_address = o.max_streams_per_address;
  return l;
}

offload::client_security client_security_of(const options& o) {
  return {o.tls_ca, o.tls_client_cert, o.tls_client_key, o.token};
}

void finish_receiver_options(const CLI::App& app, options& o) {
  if (!o.metrics.empty()) {
#if !OFFLOAD_WITH_METRICS
    throw CLI::ValidationError("--metrics",
                               "this build has no prometheus-cpp (install prometheus-cpp-dev, reconfigure)");
#endif
    try {
      check_address("--metrics", o.metrics, true);
    } catch (const std::invalid_argument& e) {
      throw CLI::ValidationError("--metrics", e.what());
    }
  }
  if (!o.tokens_file.empty()) {
    try {
      o.tokens = offload::client_tokens::load(o.tokens_file);
    } catch (const std::invalid_argument& e) {
      throw CLI::ValidationError("--tokens", e.what());
    }
  }
  if (o.backend == "emulated" && o.profile.empty())
    throw CLI::ValidationError("--backend emulated", "needs --profile NAME|FILE (profiles/: t4, t4-trt)");
  if (o.backend != "emulated" && !o.profile.empty())
    throw CLI::ValidationError("--profile", "applies to --backend emulated only");
  if (!o.profile.empty()) {
    try {
      o.profile_data = load_device_profile(find_data_file("profiles", o.profile));
    } catch (const std::invalid_argument& e) {
      throw CLI::ValidationError("--profile", e.what());
    }
  }
  per_kernel(o.kernel_instances, "--kernel-instances", 1);  // (refused here, at parse time, when malformed)
  per_kernel(o.kernel_priority, "--kernel-priority", 1);
  per_kernel(o.kernel_max_queue, "--kernel-max-queue", 0);
  for (auto b : o.preferred_batch)
    if (o.max_batch > 0 && b > o.max_batch)
      throw CLI::ValidationError("--preferred-batch",
                                 std::to_string(b) + " is larger than --max-batch " + std::to_string(o.max_batch));
  o.credits_given = app.count("--credits") > 0;
  const bool explicit_times = app.count("--spin-us") || app.count("--yield-us");
  if (explicit_times && o.wait_policy != "adaptive")
    throw CLI::ValidationError("--spin-us/--yield-us", "apply to --wait-policy adaptive only");
  constexpr int forever = 1'000'000'000;  // µs
  if (o.wait_policy == "spin") {
    o.spin_us = forever;
    o.yield_us = forever;
  } else if (o.wait_policy == "yield") {
    o.spin_us = 0;
    o.yield_us = forever;
  } else if (o.wait_policy == "block") {
    o.spin_us = 0;
    o.yield_us = 0;
  }
}

void finish_options(const CLI::App& app, options& o) {
  if (!o.token_file.empty()) {
    std::ifstream f(o.token_file);
    std::getline(f, o.token);
    while (!o.token.empty() && std::isspace(static_cast<unsigned char>(o.token.back()))) o.token.pop_back();
    if (o.token.empty()) throw CLI::ValidationError("--token-file", o.token_file + ": no token on its first line");
  }
  o.connect = app.count("--connect") > 0;
  std::vector<std::string> addresses;  // --connect A,B
  for (const auto& list : o.connect_to) {
    std::stringstream in(list);
    for (std::string a; std::getline(in, a, ',');)
      if (!a.empty()) addresses.push_back(a);
  }
  o.connect_to = std::move(addresses);
  if (o.grpc()) {
    if (o.serve || o.stop || !o.port_file.empty() || !o.service_name.empty())
      throw CLI::ValidationError("--serve/--stop/--port-file/--service-name",
                                 "apply to --transport mpi; the gRPC receiver service is offload-serve");
    try {
      for (const auto& a : o.connect_to) check_address("--connect", a, false);
      if (!o.listen.empty()) check_address("--listen", o.listen, true);
    } catch (const std::invalid_argument& e) {
      throw CLI::ValidationError("--connect/--listen", e.what());
    }
    if (o.kserve() && !o.connect)
      throw CLI::ValidationError("--transport",
                                 "kserve reaches KServe v2 servers: give --connect HOST:PORT[,...] "
                                 "(offload-serve --kserve, Triton); this job's own receivers speak mpi "
                                 "or grpc");
    if (o.connect) {
      if (o.connect_to.empty())
        throw CLI::ValidationError("--connect",
                                   "with --transport " + o.transport + " it needs HOST:PORT[,HOST:PORT...]");
      if (app.count("--receivers"))
        throw CLI::ValidationError("--receivers", "does not apply with --connect: every rank transmits");
      if (o.mode == "local") throw CLI::ValidationError("--mode", "local runs no receivers: it cannot use --connect");
      o.receivers = 0;
      o.remote_receivers = int(o.connect_to.size());
      o.connect = false;  // (not the MPI service)
      if (app.count("--listen")) throw CLI::ValidationError("--listen", "does not apply with --connect");
    }
  } else {
    if (!o.connect_to.empty())
      throw CLI::ValidationError("--connect",
                                 "HOST:PORT is for --transport grpc; the MPI service is found through "
                                 "--port-file or --service-name");
    if (app.count("--listen") || app.count("--grpc-threads"))
      throw CLI::ValidationError("--listen/--grpc-threads", "apply to --transport grpc only");
  }
  if (!o.kserve_listen.empty()) {
    try {
      check_address("--kserve", o.kserve_listen, true);
    } catch (const std::invalid_argument& e) {
      throw CLI::ValidationError("--kserve", e.what());
    }
    if (o.receivers == 0 || o.connect || o.serve)
      throw CLI::ValidationError("--kserve",
                                 "needs this job's receiver ranks (--receivers); a receiver service "
                                 "serving KServe v2 is offload-serve --kserve");
    if (o.receivers > 1 && o.kserve_listen.substr(o.kserve_listen.rfind(':') + 1) != "0")
      throw CLI::ValidationError("--kserve", "with --receivers " + std::to_string(o.receivers) +
                                                 " every receiver rank would listen on the same port: give PORT 0");
  }
  if (int(o.serve) + int(o.connect) + int(o.stop) > 1)
    throw CLI::ValidationError("--serve/--connect/--stop", "give at most one of them");
  if (o.service_mode()) {
    if (o.port_file.empty() && o.service_name.empty())
      throw CLI::ValidationError("--port-file/--service-name", "--serve, --connect and --stop need one of them");
    if (app.count("--receivers"))
      throw CLI::ValidationError("--receivers",
                                 "does not apply to a service: --serve makes every rank a receiver, "
                                 "--connect every rank a transmitter");
    if (o.mode == "local") throw CLI::ValidationError("--mode", "local runs no receivers: it cannot use a service");
    o.receivers = 0;  // --connect: every rank of this job transmits (--serve does not use it)
  } else if (!o.port_file.empty() || !o.service_name.empty()) {
    throw CLI::ValidationError("--port-file/--service-name", "apply to --serve, --connect or --stop only");
  } else if (o.mode == "local") {
    if (o.receivers > 0)
      throw CLI::ValidationError("--receivers", "--mode local runs no receivers; leave it out or give 0");
    o.receivers = 0;
  } else if (o.receivers < 0) {
    o.receivers = 1;
  }
  if (o.workload != "single" && (app.count("--kernel") || app.count("--size") || app.count("--work")))
    throw CLI::ValidationError("--kernel/--size/--work", "apply to --workload single only, not " + o.workload);
  if (app.count("--distance") && app.count("--inject-latency"))
    throw CLI::ValidationError("--distance/--inject-latency", "give one of them, not both");
  if (app.count("--inject-latency")) {
    o.distance = "custom";
  } else {
    for (const auto& [name, ms] : distance_presets())
      if (name == o.distance) o.inject_latency_ms = ms;
  }
  if (o.inject_jitter_ms > o.inject_latency_ms && o.inject_jitter_ms > 0)
    throw CLI::ValidationError("--inject-jitter", "is larger than the one-way latency; delays would be cut at zero");
  finish_receiver_options(app, o);
}

}  // namespace offload::app
