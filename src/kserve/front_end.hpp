#pragma once
// The KServe v2 front end's parts (server.cpp: the endpoint and its sessions; rpcs.cpp: the gRPC
// service that calls it). Private to src/kserve.

#include "server.hpp"

#include <offload/host_pool.hpp>
#include <offload/kernel.hpp>
#include <offload/wire.hpp>

#include "tensors.hpp"

#include "src/transport/grpc_security.hpp"

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace offload::detail::kserve_front {

using steady = std::chrono::steady_clock;

/// Where a request's answer goes: a unary call's reactor, or a stream.
class answer_sink {
 public:
  virtual ~answer_sink() = default;
  /// Called once, with the response filled when `st` is OK.
  virtual void answer(const grpc::Status& st, std::unique_ptr<inference::ModelInferResponse> response) = 0;
};

struct model_entry {
  const kernel* k = nullptr;
  model_io io;
  std::uint32_t kernel_id = 0;
  /// (batched) The most rows one request may carry: what fits the message limit.
  std::int32_t max_batch = 0;
  // ModelStatistics (guarded by the server's mutex).
  std::uint64_t success = 0, success_ns = 0, fail = 0, fail_ns = 0;
  std::uint64_t queue_ns = 0, infer_ns = 0, inferences = 0, last_ms = 0;
};

struct pending_request {
  std::shared_ptr<answer_sink> sink;
  model_entry* model;
  kserve::infer_call call;
  steady::time_point arrived;
};

struct session {
  std::string client;   // gRPC's peer address (and the token's client name)
  client_identity who;  // (with tokens) whose token opened it
  bool stream = false;
  bool acked = false;
  bool ending = false;       // goodbye sent: no more requests
  bool half_closed = false;  // (stream) the client sends no more; it ends with its last answer
  std::uint32_t credits = 0;
  std::uint32_t outstanding = 0;
  std::uint64_t next_id = 1;
  std::deque<std::pair<std::uint64_t, buffer>> backlog;  // requests beyond the credits
  std::map<std::uint64_t, pending_request> pending;      // sent or waiting, by request id
  steady::time_point last_active;                        // the last request or answer
  steady::time_point last_sent;  // the last message to the receiver (keepalives keep it within its idle timeout)
};

class kserve_server;

/// The service of the RPCs, answering from `server`.
std::unique_ptr<grpc::Service> make_service(kserve_server& server);

class kserve_server final : public endpoint {
 public:
  kserve_server(const kserve_listen& listen, const kernel_registry& kernels, host_pool& pool, const wire_limits& limits,
                std::function<void()> wake);
  ~kserve_server() override;

  std::optional<incoming> receive() override;
  std::string describe(int peer) const override;
  int port() const noexcept override { return m_port; }
  void forget(int peer) override;
  /// KServe clients' sessions: served while the receiver runs, never waited for.
  bool expected(int) const override { return false; }
  steady::time_point next_release() const noexcept override;

  // ---- for the gRPC handlers (any thread) ----
  model_entry* find_model(const std::string& name, const std::string& version, grpc::Status& error);
  std::vector<model_entry*> models() { return m_model_list; }
  std::size_t max_backlog() const noexcept { return m_listen.max_backlog; }
  /// Checks `req` and queues it for the receiver in the session of `client` (a connection) or
  /// of stream `stream_session` (>= 0); the answer goes to `sink`. Bad input is answered at once.
  void submit(const inference::ModelInferRequest& req, const std::string& client, const client_identity& who,
              int stream_session, std::shared_ptr<answer_sink> sink);
  /// A new session for a stream; its number.
  int open_stream_session(const std::string& client, const client_identity& who);
  /// A call's client from its token (a tokens file given), and the session key of its
  /// connection; a refused call gets an UNAUTHENTICATED status (and no session).
  grpc::Status authorize(grpc::CallbackServerContext* c, client_identity& who, std::string& client);
  std::optional<client_identity> client_of(int peer) const override;
  std::uint64_t unauthenticated() const override { return m_gate.refused(); }
  void drain() override { m_draining.store(true); }
  bool draining() const noexcept { return m_draining.load(); }
  /// The stream's client is gone (cancelled: drop) or done sending (half-close).
  void end_stream_session(int peer, bool cancelled);
  void fill_statistics(const std::string& name, const std::string& version, inference::ModelStatisticsResponse& out,
                       grpc::Status& error);

 protected:
  void post(outgoing o) override;
  bool complete_sends() override { return false; }  // every send completes in post
  std::size_t posted_sends() const noexcept override { return 0; }
  std::size_t abandon_posted(int) override { return 0; }

 private:
  int open_session_locked(const std::string& client, const client_identity& who, bool stream);
  void release_backlog_locked(int peer, session& s);
  void end_session_locked(int peer, session& s, bool drop);
  void fail_pending_locked(session& s, const grpc::Status& st, std::vector<std::shared_ptr<answer_sink>>& sinks,
                           std::vector<grpc::Status>& statuses);
  /// A reply or error for one of `s`'s requests: its answer, and the model's statistics.
  void answer_locked(int peer, session& s, const message_view& view, std::vector<std::shared_ptr<answer_sink>>& sinks,
                     std::vector<grpc::Status>& statuses,
                     std::vector<std::unique_ptr<inference::ModelInferResponse>>& responses);
  void push_to_locked(int peer, buffer bytes);

  host_pool& m_pool;
  wire_limits m_limits;
  std::function<void()> m_wake;
  kserve_listen m_listen;
  token_gate m_gate;
  std::atomic<bool> m_draining{false};
  std::string m_signature;  // the hello's kernel list: every kernel of the registry
  std::map<std::string, model_entry, std::less<>> m_models;
  std::vector<model_entry*> m_model_list;
  mutable std::mutex m_mutex;
  std::deque<incoming> m_inbox;
  std::map<int, session> m_sessions;
  std::map<std::string, int, std::less<>> m_by_client;  // connections' open sessions
  int m_next_peer = 0;
  bool m_stopping = false;
  std::chrono::milliseconds m_session_idle;
  std::chrono::milliseconds m_keepalive_every{std::chrono::milliseconds::max()};  // from the receiver's idle timeout
  int m_port = 0;
  std::unique_ptr<grpc::Service> m_service;
  std::unique_ptr<grpc::Server> m_server;
};

}  // namespace offload::detail::kserve_front
