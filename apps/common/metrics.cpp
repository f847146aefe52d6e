#include "metrics.hpp"

#include <civetweb.h>
#include <prometheus/metric_family.h>
#include <prometheus/text_serializer.h>

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <map>
#include <stdexcept>

namespace offload::app {
namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

MetricFamily family(std::string name, std::string help, MetricType type) {
  return {std::move(name), std::move(help), type, {}};
}

void add(MetricFamily& f, double value, std::vector<ClientMetric::Label> labels = {}) {
  ClientMetric m;
  m.label = std::move(labels);
  if (f.type == MetricType::Counter)
    m.counter.value = value;
  else
    m.gauge.value = value;
  f.metric.push_back(std::move(m));
}

/// Resident memory of this process, bytes (/proc/self/statm).
double resident_bytes() {
  long pages = 0, resident = 0;
  if (FILE* f = std::fopen("/proc/self/statm", "r")) {
    if (std::fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
    std::fclose(f);
  }
  return double(resident) * double(sysconf(_SC_PAGESIZE));
}

}  // namespace

std::string metrics_text(const receiver_stats& s, const std::vector<session_info>& sessions, double wall_s) {
  std::vector<MetricFamily> out;
  // Triton's, per model and version (names, labels and units as Triton's metrics page gives them).
  struct per_model {
    const char* name;
    const char* help;
    double (*value)(const kernel_counters&);
  };
  static const per_model triton[] = {
      {"nv_inference_request_success", "Number of successful inference requests, all batch sizes",
       [](const kernel_counters& c) { return double(c.success); }},
      {"nv_inference_request_failure", "Number of failed inference requests, all batch sizes",
       [](const kernel_counters& c) { return double(c.failure); }},
      {"nv_inference_count", "Number of inferences performed (rows or items of the successful requests)",
       [](const kernel_counters& c) { return double(c.inferences); }},
      {"nv_inference_exec_count", "Number of model executions performed (batches)",
       [](const kernel_counters& c) { return double(c.executions); }},
      {"nv_inference_request_duration_us", "Cumulative inference request duration in microseconds",
       [](const kernel_counters& c) { return 1e-3 * double(c.request_ns); }},
      {"nv_inference_queue_duration_us", "Cumulative inference queuing duration in microseconds",
       [](const kernel_counters& c) { return 1e-3 * double(c.queue_ns); }},
      {"nv_inference_compute_input_duration_us", "Cumulative compute input duration in microseconds",
       [](const kernel_counters& c) { return 1e-3 * double(c.input_ns); }},
      {"nv_inference_compute_infer_duration_us", "Cumulative compute inference duration in microseconds",
       [](const kernel_counters& c) { return 1e-3 * double(c.infer_ns); }},
      {"nv_inference_compute_output_duration_us", "Cumulative inference compute output duration in microseconds",
       [](const kernel_counters& c) { return 1e-3 * double(c.output_ns); }},
  };
  for (const auto& t : triton) {
    auto f = family(t.name, t.help, MetricType::Counter);
    for (const auto& [name, c] : s.kernels) add(f, t.value(c), {{"model", name}, {"version", c.version}});
    out.push_back(std::move(f));
  }
  // Ours.
  auto counter = [&](const char* name, const char* help, double v) {
    auto f = family(name, help, MetricType::Counter);
    add(f, v);
    out.push_back(std::move(f));
  };
  auto gauge = [&](const char* name, const char* help, double v) {
    auto f = family(name, help, MetricType::Gauge);
    add(f, v);
    out.push_back(std::move(f));
  };
  counter("offload_requests_total", "Requests accepted (the exit summary's 'requests')", double(s.requests));
  counter("offload_replies_total", "Answers with outputs (the exit summary's 'replies')", double(s.replies));
  counter("offload_error_replies_total", "Error answers, every reason (the exit summary's 'error_replies')",
          double(s.error_replies));
  counter("offload_bytes_received_total", "Bytes of messages received (bytes_in)", double(s.bytes_in));
  counter("offload_bytes_sent_total", "Bytes of messages sent (bytes_out)", double(s.bytes_out));
  {
    auto f = family("offload_refusals_total", "Requests or calls refused, by reason", MetricType::Counter);
    add(f, double(s.busy), {{"reason", "busy"}});
    add(f, double(s.expired), {{"reason", "expired"}});
    add(f, double(s.malformed), {{"reason", "malformed"}});
    add(f, double(s.handshake_failures), {{"reason", "handshake"}});
    add(f, double(s.unauthenticated), {{"reason", "unauthenticated"}});
    out.push_back(std::move(f));
  }
  counter("offload_sessions_finished_total", "Sessions ended (peers_finished)", double(s.peers_finished));
  counter("offload_sessions_dropped_total", "Sessions dropped after the idle timeout (peers_dropped)",
          double(s.peers_dropped));
  counter("offload_executor_busy_seconds_total", "Seconds with at least one batch running (busy_s)", s.busy_s);
  gauge("offload_executor_busy_fraction", "busy_s over the time served", wall_s > 0 ? s.busy_s / wall_s : 0);
  gauge("offload_sessions", "Sessions open now", double(sessions.size()));
  {
    auto f = family("offload_client_requests_in_flight", "Requests in flight per client (tokens file name; '' without)",
                    MetricType::Gauge);
    std::map<std::string, double> by_client;
    for (const auto& x : sessions) by_client[x.client] += x.in_flight;
    for (const auto& [client, n] : by_client) add(f, n, {{"client", client}});
    out.push_back(std::move(f));
  }
  gauge("offload_resident_memory_bytes", "Resident memory of this process", resident_bytes());
  return prometheus::TextSerializer().Serialize(out);
}

struct metrics_server::impl {
  metrics_server* self = nullptr;
  metrics_source source;
  mg_context* ctx = nullptr;
  std::chrono::steady_clock::time_point start = std::chrono::steady_clock::now();
};

namespace {

int reply(mg_connection* c, int status, const char* reason, const char* type, const std::string& body) {
  mg_printf(c, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n", status, reason,
            type, body.size());
  mg_write(c, body.data(), body.size());
  return status;
}

int handle(mg_connection* c, void* data) {
  auto& i = *static_cast<metrics_server::impl*>(data);
  const mg_request_info* r = mg_get_request_info(c);
  const std::string uri = r->local_uri != nullptr ? r->local_uri : "";
  if (std::strcmp(r->request_method, "GET") != 0 && std::strcmp(r->request_method, "HEAD") != 0)
    return reply(c, 405, "Method Not Allowed", "text/plain", "GET only\n");
  if (uri == "/v2/health/live") return reply(c, 200, "OK", "text/plain", "");
  if (uri == "/v2/health/ready")
    return i.self->ready() ? reply(c, 200, "OK", "text/plain", "")
                           : reply(c, 503, "Service Unavailable", "text/plain", "draining\n");
  if (uri == "/metrics") {
    try {
      const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - i.start).count();
      return reply(c, 200, "OK", "text/plain; version=0.0.4; charset=utf-8",
                   metrics_text(i.source.stats(), i.source.sessions(), wall));
    } catch (const std::exception& e) {
      return reply(c, 500, "Internal Server Error", "text/plain", std::string(e.what()) + "\n");
    }
  }
  return reply(c, 404, "Not Found", "text/plain", "this server has /metrics, /v2/health/live and /v2/health/ready\n");
}

}  // namespace

metrics_server::metrics_server(const std::string& address, metrics_source source) : m_impl(std::make_unique<impl>()) {
  m_impl->self = this;
  m_impl->source = std::move(source);
  mg_init_library(0);
  const char* options[] = {"listening_ports", address.c_str(), "num_threads", "2", nullptr};
  mg_callbacks callbacks{};
  m_impl->ctx = mg_start(&callbacks, nullptr, options);
  if (m_impl->ctx == nullptr) {
    mg_exit_library();
    throw std::runtime_error("--metrics: cannot listen for HTTP on '" + address +
                             "' (is the address valid, the port free?)");
  }
  mg_set_request_handler(m_impl->ctx, "/", handle, m_impl.get());
  mg_server_port ports[4]{};
  if (mg_get_server_ports(m_impl->ctx, 4, ports) > 0) m_port = ports[0].port;
}

metrics_server::~metrics_server() {
  mg_stop(m_impl->ctx);
  mg_exit_library();
}

}  // namespace offload::app
