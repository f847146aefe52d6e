#pragma once
// --metrics HOST:PORT: a small HTTP server (civetweb) for operators and their tools, beside a
// receiver service:
//   /metrics           Prometheus text (prometheus-cpp's serializer): Triton's nv_inference_*
//                      counters per model and version (receiver_stats::kernels) and ours
//                      (offload_*: sessions, per-client requests in flight, bytes, refusals,
//                      executor busy time, resident memory);
//   /v2/health/live    200 while the process serves HTTP (KServe v2's HTTP health API);
//   /v2/health/ready   200 while ready, 503 once set_ready(false) (a drain).
// docs/reliability.md, "Running a service", lists every metric and what it counts.

#include <offload/receiver.hpp>

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace offload::app {

/// What one scrape reads: the receivers' statistics and sessions (several receivers: one
/// process's ranks; their counters are added).
struct metrics_source {
  std::function<receiver_stats()> stats;
  std::function<std::vector<session_info>()> sessions;
};

/// The metrics text of `s` and `sessions` (Prometheus exposition format 0.0.4).
std::string metrics_text(const receiver_stats& s, const std::vector<session_info>& sessions, double wall_s);

class metrics_server {
 public:
  /// Listens on `address` ("host:port", port 0: any free one); throws std::runtime_error when it
  /// cannot, std::invalid_argument when this build has no prometheus-cpp.
  metrics_server(const std::string& address, metrics_source source);
  ~metrics_server();
  metrics_server(const metrics_server&) = delete;
  metrics_server& operator=(const metrics_server&) = delete;
  int port() const noexcept { return m_port; }
  void set_ready(bool ready) noexcept { m_ready.store(ready); }
  bool ready() const noexcept { return m_ready.load(); }

  struct impl;

 private:
  std::unique_ptr<impl> m_impl;
  int m_port = 0;
  std::atomic<bool> m_ready{true};
};

}  // namespace offload::app
