// The KServe v2 front end: an endpoint (src/transport/endpoint.hpp) whose peers are KServe
// clients. gRPC's callback threads check each ModelInfer against the model's declared tensors
// (tensors.hpp) and hand the receiver a request message of the mpi-offload protocol; the
// receiver's replies and errors come back through post() and finish the RPC. Each client
// connection (gRPC's peer address) or ModelStreamInfer stream is one session of the protocol,
// opened with a hello the endpoint writes for it and ended with a goodbye once it has been
// idle (connections) or has ended (streams), so the receiver's credits, scheduler, fairness,
// limits and counters apply to KServe clients as to transmitters. Requests beyond the credits
// wait here, in order, up to kserve_listen::max_backlog per session.

#include "server.hpp"

#include "tensors.hpp"

#include "src/base/clock.hpp"
#include "src/session/handshake.hpp"

#include <kserve_proto/grpc_service.grpc.pb.h>

#include <offload/log.hpp>

#include <grpcpp/grpcpp.h>
#include <grpcpp/resource_quota.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <deque>
#include <limits>
#include <map>
#include <memory>
#include <mutex>

namespace offload::detail {

namespace {

using steady = std::chrono::steady_clock;
namespace inf = inference;

/// Where a request's answer goes: a unary call's reactor, or a stream.
class answer_sink {
 public:
  virtual ~answer_sink() = default;
  /// Called once, with the response filled when `st` is OK.
  virtual void answer(const grpc::Status& st, std::unique_ptr<inf::ModelInferResponse> response) = 0;
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
  std::string client;  // gRPC's peer address
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

class unary_sink final : public answer_sink {
 public:
  unary_sink(grpc::ServerUnaryReactor* r, inf::ModelInferResponse* out) : m_reactor(r), m_out(out) {}
  void answer(const grpc::Status& st, std::unique_ptr<inf::ModelInferResponse> response) override {
    if (st.ok() && response) m_out->Swap(response.get());
    m_reactor->Finish(st);
  }

 private:
  grpc::ServerUnaryReactor* m_reactor;
  inf::ModelInferResponse* m_out;
};

class stream_reactor;

}  // namespace

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
  void submit(const inf::ModelInferRequest& req, const std::string& client, int stream_session,
              std::shared_ptr<answer_sink> sink);
  /// A new session for a stream; its number.
  int open_stream_session(const std::string& client);
  /// The stream's client is gone (cancelled: drop) or done sending (half-close).
  void end_stream_session(int peer, bool cancelled);
  void fill_statistics(const std::string& name, const std::string& version, inf::ModelStatisticsResponse& out,
                       grpc::Status& error);

 protected:
  void post(outgoing o) override;
  bool complete_sends() override { return false; }  // every send completes in post
  std::size_t posted_sends() const noexcept override { return 0; }
  std::size_t abandon_posted(int) override { return 0; }

 private:
  int open_session_locked(const std::string& client, bool stream);
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

namespace {

/// ModelStreamInfer: each request read is submitted; answers are written in the order they
/// complete, errors as a response with error_message (the stream goes on).
class stream_reactor final : public grpc::ServerBidiReactor<inf::ModelInferRequest, inf::ModelStreamInferResponse>,
                             public std::enable_shared_from_this<stream_reactor> {
 public:
  stream_reactor(kserve_server& server, std::string client, std::size_t window)
      : m_server(server), m_client(std::move(client)), m_window(window) {}
  void start(std::shared_ptr<stream_reactor> self) {
    m_self = std::move(self);
    m_peer = m_server.open_stream_session(m_client);
    StartRead(&m_request);
  }
  void OnReadDone(bool ok) override {
    if (!ok) {  // the client is done sending (or gone)
      std::lock_guard lock(m_mutex);
      m_reading = false;
      m_server.end_stream_session(m_peer, false);
      maybe_finish_locked();
      return;
    }
    {
      std::lock_guard lock(m_mutex);
      ++m_owed;
    }
    m_server.submit(m_request, m_client, m_peer, std::make_shared<forwarder>(shared_from_this()));
    m_request.Clear();
    std::lock_guard lock(m_mutex);
    read_next_locked();
  }
  void OnWriteDone(bool ok) override {
    std::lock_guard lock(m_mutex);
    m_writing = false;
    --m_owed;  // (an answer written)
    if (!ok) m_broken = true;
    if (!m_broken && !m_queue.empty()) start_write_locked();
    if (!m_broken && m_read_paused) read_next_locked();
    maybe_finish_locked();
  }
  void OnCancel() override {
    m_server.end_stream_session(m_peer, true);
    std::lock_guard lock(m_mutex);
    m_broken = true;
    maybe_finish_locked();
  }
  void OnDone() override { m_self.reset(); }

  void write(std::unique_ptr<inf::ModelStreamInferResponse> r) {
    std::lock_guard lock(m_mutex);
    if (m_broken) {
      --m_owed;
      maybe_finish_locked();
      return;
    }
    m_queue.push_back(std::move(r));
    if (!m_writing) start_write_locked();
  }

 private:
  class forwarder final : public answer_sink {
   public:
    explicit forwarder(std::shared_ptr<stream_reactor> s) : m_stream(std::move(s)) {}
    void answer(const grpc::Status& st, std::unique_ptr<inf::ModelInferResponse> response) override {
      auto r = std::make_unique<inf::ModelStreamInferResponse>();
      if (st.ok() && response)
        r->mutable_infer_response()->Swap(response.get());
      else
        r->set_error_message(st.error_message());
      m_stream->write(std::move(r));
    }

   private:
    std::shared_ptr<stream_reactor> m_stream;
  };

  /// The next request, unless `window` requests read have answers not yet written (in the
  /// receiver, or waiting for a client that does not read): then the stream waits, and gRPC's
  /// flow control holds the client, so that neither side's memory grows.
  void read_next_locked() {
    m_read_paused = m_owed >= m_window;
    if (!m_read_paused && m_reading) StartRead(&m_request);
  }
  void start_write_locked() {
    m_current = std::move(m_queue.front());
    m_queue.pop_front();
    m_writing = true;
    StartWrite(m_current.get());
  }
  void maybe_finish_locked() {
    if (m_finished || m_writing) return;
    if (m_broken || (!m_reading && m_owed == 0)) {
      m_finished = true;
      Finish(m_broken ? grpc::Status::CANCELLED : grpc::Status::OK);
    }
  }

  kserve_server& m_server;
  std::string m_client;
  std::shared_ptr<stream_reactor> m_self;  // alive until OnDone
  int m_peer = -1;
  inf::ModelInferRequest m_request;
  std::mutex m_mutex;
  std::deque<std::unique_ptr<inf::ModelStreamInferResponse>> m_queue;
  std::unique_ptr<inf::ModelStreamInferResponse> m_current;
  std::size_t m_window;
  std::size_t m_owed = 0;  // requests read whose answer is not written yet
  bool m_reading = true, m_read_paused = false, m_writing = false, m_broken = false, m_finished = false;
};

/// The RPCs. Metadata is answered on gRPC's thread from the kernels' declarations.
class service final : public inf::GRPCInferenceService::CallbackService {
 public:
  explicit service(kserve_server& s) : m_server(s) {}

  grpc::ServerUnaryReactor* ServerLive(grpc::CallbackServerContext* c, const inf::ServerLiveRequest*,
                                       inf::ServerLiveResponse* r) override {
    r->set_live(true);
    return done(c, grpc::Status::OK);
  }
  grpc::ServerUnaryReactor* ServerReady(grpc::CallbackServerContext* c, const inf::ServerReadyRequest*,
                                        inf::ServerReadyResponse* r) override {
    r->set_ready(true);
    return done(c, grpc::Status::OK);
  }
  grpc::ServerUnaryReactor* ServerMetadata(grpc::CallbackServerContext* c, const inf::ServerMetadataRequest*,
                                           inf::ServerMetadataResponse* r) override {
    r->set_name("mpi-offload");
    r->set_version(std::to_string(wire_version));
    for (const char* e : {"model_configuration", "statistics"}) r->add_extensions(e);
    return done(c, grpc::Status::OK);
  }
  grpc::ServerUnaryReactor* ModelReady(grpc::CallbackServerContext* c, const inf::ModelReadyRequest* q,
                                       inf::ModelReadyResponse* r) override {
    grpc::Status st;
    r->set_ready(m_server.find_model(q->name(), q->version(), st) != nullptr);
    return done(c, grpc::Status::OK);
  }
  grpc::ServerUnaryReactor* ModelMetadata(grpc::CallbackServerContext* c, const inf::ModelMetadataRequest* q,
                                          inf::ModelMetadataResponse* r) override {
    grpc::Status st;
    const model_entry* m = m_server.find_model(q->name(), q->version(), st);
    if (m == nullptr) return done(c, st);
    r->set_name(q->name());
    r->add_versions(std::string(m->k->version()));
    r->set_platform("mpi-offload");
    auto add = [](const tensor_spec& t, inf::ModelMetadataResponse::TensorMetadata* to) {
      to->set_name(t.name);
      to->set_datatype(std::string(kserve::datatype_name(t.type)));
      for (auto d : t.dims) to->add_shape(d);
    };
    for (const auto& t : m->io.inputs) add(t, r->add_inputs());
    for (const auto& t : m->io.outputs) add(t, r->add_outputs());
    return done(c, grpc::Status::OK);
  }
  grpc::ServerUnaryReactor* ModelConfig(grpc::CallbackServerContext* c, const inf::ModelConfigRequest* q,
                                        inf::ModelConfigResponse* r) override {
    grpc::Status st;
    const model_entry* m = m_server.find_model(q->name(), q->version(), st);
    if (m == nullptr) return done(c, st);
    auto* cfg = r->mutable_config();
    cfg->set_name(q->name());
    cfg->set_platform("mpi-offload");
    cfg->set_backend("mpi-offload");
    // Triton's convention: a batched model lists its dims without the batch dimension and
    // states the largest batch a request may carry.
    const std::size_t skip = m->io.batched ? 1 : 0;
    cfg->set_max_batch_size(m->io.batched ? m->max_batch : 0);
    for (const auto& t : m->io.inputs) {
      auto* in = cfg->add_input();
      in->set_name(t.name);
      in->set_data_type(kserve::config_type(t.type));
      for (std::size_t i = skip; i < t.dims.size(); ++i) in->add_dims(t.dims[i]);
    }
    for (const auto& t : m->io.outputs) {
      auto* out = cfg->add_output();
      out->set_name(t.name);
      out->set_data_type(kserve::config_type(t.type));
      for (std::size_t i = skip; i < t.dims.size(); ++i) out->add_dims(t.dims[i]);
    }
    if (m->io.batched) cfg->mutable_dynamic_batching();
    cfg->mutable_version_policy()->mutable_latest()->set_num_versions(1);
    return done(c, grpc::Status::OK);
  }
  grpc::ServerUnaryReactor* ModelStatistics(grpc::CallbackServerContext* c, const inf::ModelStatisticsRequest* q,
                                            inf::ModelStatisticsResponse* r) override {
    grpc::Status st;
    m_server.fill_statistics(q->name(), q->version(), *r, st);
    return done(c, st);
  }
  grpc::ServerUnaryReactor* RepositoryIndex(grpc::CallbackServerContext* c, const inf::RepositoryIndexRequest*,
                                            inf::RepositoryIndexResponse* r) override {
    for (const model_entry* m : m_server.models()) {
      auto* e = r->add_models();
      e->set_name(std::string(m->k->name()));
      e->set_version(std::string(m->k->version()));
      e->set_state("READY");
    }
    return done(c, grpc::Status::OK);
  }
  grpc::ServerUnaryReactor* ModelInfer(grpc::CallbackServerContext* c, const inf::ModelInferRequest* q,
                                       inf::ModelInferResponse* r) override {
    auto* reactor = c->DefaultReactor();
    m_server.submit(*q, c->peer(), -1, std::make_shared<unary_sink>(reactor, r));
    return reactor;
  }
  grpc::ServerBidiReactor<inf::ModelInferRequest, inf::ModelStreamInferResponse>* ModelStreamInfer(
      grpc::CallbackServerContext* c) override {
    auto s = std::make_shared<stream_reactor>(m_server, c->peer(), m_server.max_backlog());
    s->start(s);
    return s.get();
  }

 private:
  static grpc::ServerUnaryReactor* done(grpc::CallbackServerContext* c, const grpc::Status& st) {
    auto* r = c->DefaultReactor();
    r->Finish(st);
    return r;
  }
  kserve_server& m_server;
};

}  // namespace

kserve_server::kserve_server(const kserve_listen& listen, const kernel_registry& kernels, host_pool& pool,
                             const wire_limits& limits, std::function<void()> wake)
    : endpoint(pool, limits.max_message_bytes),
      m_pool(pool),
      m_limits(limits),
      m_wake(std::move(wake)),
      m_listen(listen),
      m_signature(kernels.signature()),
      m_session_idle(listen.session_idle) {
  if (listen.session_idle.count() <= 0) throw std::invalid_argument("kserve_listen::session_idle must be positive");
  for (const auto& name : kernels.names()) {
    const kernel* k = kernels.find(name);
    model_io io = k->io();
    if (io.inputs.empty() && io.outputs.empty()) {
      offload::logger()->info(
          "KServe v2: kernel '{}' declares no inputs and outputs (kernel::io): not offered as a model", name);
      continue;
    }
    auto& m = m_models[name];
    m.k = k;
    m.io = std::move(io);
    m.kernel_id = *kernels.id_of(name);
    if (m.io.batched) {
      std::uint64_t row_bytes = 0;  // a row's bytes over every input (a -1 past the first counts 1)
      for (const auto& t : m.io.inputs) {
        std::uint64_t n = dtype_size(t.type);
        for (std::size_t i = 1; i < t.dims.size(); ++i) n *= std::uint64_t(std::max<std::int64_t>(t.dims[i], 1));
        row_bytes += n;
      }
      m.max_batch = std::int32_t(std::min<std::uint64_t>(
          limits.max_message_bytes / std::max<std::uint64_t>(row_bytes, 1), std::numeric_limits<std::int32_t>::max()));
    }
  }
  for (auto& [name, m] : m_models) m_model_list.push_back(&m);

  m_service = std::make_unique<service>(*this);
  grpc::ServerBuilder builder;
  // The server's own limit (wire_limits) applies, answered RESOURCE_EXHAUSTED with the sizes;
  // gRPC's is set above it (a message is the tensors plus the protobuf framing).
  const auto grpc_limit = std::min<std::uint64_t>(limits.max_message_bytes + (1u << 20), INT32_MAX);
  builder.SetMaxReceiveMessageSize(int(grpc_limit));
  builder.SetMaxSendMessageSize(-1);
  if (listen.memory_bytes > 0) {
    grpc::ResourceQuota quota("offload KServe server at " + listen.address);
    quota.Resize(listen.memory_bytes);
    builder.SetResourceQuota(quota);
  }
  builder.AddListeningPort(listen.address, grpc::InsecureServerCredentials(), &m_port);
  builder.RegisterService(m_service.get());
  m_server = builder.BuildAndStart();
  if (!m_server || m_port == 0)
    throw std::runtime_error("cannot listen for KServe v2 on '" + listen.address +
                             "' (is the address valid, the port free?)");
}

kserve_server::~kserve_server() {
  std::vector<std::shared_ptr<answer_sink>> sinks;
  std::vector<grpc::Status> statuses;
  {
    std::lock_guard lock(m_mutex);
    m_stopping = true;
    for (auto& [peer, s] : m_sessions)
      fail_pending_locked(s, {grpc::StatusCode::UNAVAILABLE, "the server is shutting down"}, sinks, statuses);
  }
  for (std::size_t i = 0; i < sinks.size(); ++i) sinks[i]->answer(statuses[i], nullptr);
  m_server->Shutdown(std::chrono::system_clock::now() + std::chrono::milliseconds(500));
}

model_entry* kserve_server::find_model(const std::string& name, const std::string& version, grpc::Status& error) {
  // Triton's texts (clients show them as they are).
  auto it = m_models.find(name);
  if (it == m_models.end()) {
    error = {grpc::StatusCode::NOT_FOUND, "Request for unknown model: '" + name + "' is not found"};
    return nullptr;
  }
  if (!version.empty() && version != it->second.k->version()) {
    const bool integral =
        version.find_first_not_of("0123456789") == std::string::npos && version.size() < 19 && std::stoll(version) > 0;
    error = integral ? grpc::Status{grpc::StatusCode::NOT_FOUND,
                                    "Request for unknown model: '" + name + "' version " + version + " is not found"}
                     : grpc::Status{grpc::StatusCode::INVALID_ARGUMENT,
                                    "invalid model version specified '" + version + "' for model '" + name +
                                        "': it serves version '" + std::string(it->second.k->version()) + "'"};
    return nullptr;
  }
  return &it->second;
}

int kserve_server::open_session_locked(const std::string& client, bool stream) {
  const int peer = m_next_peer++;
  auto& s = m_sessions[peer];
  s.client = client;
  s.stream = stream;
  s.last_active = steady::now();
  push_to_locked(peer, make_hello(m_signature, now_ns()));
  return peer;
}

int kserve_server::open_stream_session(const std::string& client) {
  int peer;
  {
    std::lock_guard lock(m_mutex);
    peer = open_session_locked(client, true);
  }
  m_wake();
  return peer;
}

void kserve_server::submit(const inf::ModelInferRequest& req, const std::string& client, int stream_session,
                           std::shared_ptr<answer_sink> sink) {
  grpc::Status error;
  model_entry* m = find_model(req.model_name(), req.model_version(), error);
  if (m == nullptr) {
    sink->answer(error, nullptr);
    return;
  }
  auto checked = kserve::check_request(req, *m->k, m->io, m->kernel_id, m_limits, m_pool);
  if (!checked.ok) {
    {
      std::lock_guard lock(m_mutex);
      m->fail += 1;
    }
    sink->answer(checked.error, nullptr);
    return;
  }
  {
    std::unique_lock lock(m_mutex);
    if (m_stopping) {
      lock.unlock();
      sink->answer({grpc::StatusCode::UNAVAILABLE, "the server is shutting down"}, nullptr);
      return;
    }
    int peer = stream_session;
    if (peer < 0) {
      auto it = m_by_client.find(client);
      peer = it != m_by_client.end() ? it->second : (m_by_client[client] = open_session_locked(client, false));
    }
    auto found = m_sessions.find(peer);
    if (found == m_sessions.end() || found->second.ending) {
      lock.unlock();
      sink->answer(grpc::Status::CANCELLED, nullptr);
      return;
    }
    auto& s = found->second;
    if (s.backlog.size() >= m_listen.max_backlog) {
      m->fail += 1;
      lock.unlock();
      sink->answer({grpc::StatusCode::UNAVAILABLE,
                    "busy: " + std::to_string(s.backlog.size()) + " requests of this client already wait for credits"},
                   nullptr);
      return;
    }
    const std::uint64_t id = s.next_id++;
    std::span<std::byte> bytes = checked.ok->message.span();
    // The request id: bytes 8..15 of the header (docs/protocol.md 2.1).
    std::memcpy(bytes.data() + 8, &id, sizeof id);
    s.pending.emplace(id, pending_request{std::move(sink), m, std::move(checked.ok->call), steady::now()});
    s.backlog.emplace_back(id, std::move(checked.ok->message));
    s.last_active = steady::now();
    release_backlog_locked(peer, s);
  }
  m_wake();
}

void kserve_server::release_backlog_locked(int peer, session& s) {
  while (s.acked && !s.ending && s.outstanding < s.credits && !s.backlog.empty()) {
    push_to_locked(peer, std::move(s.backlog.front().second));
    s.backlog.pop_front();
    ++s.outstanding;
  }
}

void kserve_server::end_stream_session(int peer, bool cancelled) {
  std::vector<std::shared_ptr<answer_sink>> sinks;
  std::vector<grpc::Status> statuses;
  {
    std::lock_guard lock(m_mutex);
    auto it = m_sessions.find(peer);
    if (it == m_sessions.end()) return;
    auto& s = it->second;
    if (cancelled) {
      fail_pending_locked(s, grpc::Status::CANCELLED, sinks, statuses);
      end_session_locked(peer, s, true);
    } else if (s.pending.empty()) {
      end_session_locked(peer, s, false);
    } else {
      s.half_closed = true;  // it ends with its last answer (answer_locked)
    }
  }
  for (std::size_t i = 0; i < sinks.size(); ++i) sinks[i]->answer(statuses[i], nullptr);
  m_wake();
}

void kserve_server::fail_pending_locked(session& s, const grpc::Status& st,
                                        std::vector<std::shared_ptr<answer_sink>>& sinks,
                                        std::vector<grpc::Status>& statuses) {
  for (auto& [id, p] : s.pending) {
    sinks.push_back(std::move(p.sink));
    statuses.push_back(st);
  }
  s.pending.clear();
  s.backlog.clear();
}

void kserve_server::end_session_locked(int peer, session& s, bool drop) {
  if (s.ending) return;
  s.ending = true;
  if (!s.stream) m_by_client.erase(s.client);
  if (!drop && s.acked) {  // a clean end: goodbye, then the connection's end
    push_to_locked(peer, make_goodbye());
  }
  incoming closed;
  closed.source = peer;
  closed.closed = true;
  closed.closed_reason = s.stream ? "its ModelStreamInfer stream ended" : "it was idle";
  m_inbox.push_back(std::move(closed));
}

void kserve_server::push_to_locked(int peer, buffer bytes) {
  if (auto it = m_sessions.find(peer); it != m_sessions.end()) it->second.last_sent = steady::now();
  incoming in;
  in.source = peer;
  in.size = bytes.size();
  in.bytes = std::move(bytes);
  m_inbox.push_back(std::move(in));
}

std::optional<incoming> kserve_server::receive() {
  std::lock_guard lock(m_mutex);
  // Connections idle with nothing owed end their session.
  const auto now = steady::now();
  for (auto& [peer, s] : m_sessions) {
    if (s.ending) continue;
    if (!s.stream && s.pending.empty() && now - s.last_active >= m_session_idle)
      end_session_locked(peer, s, false);
    else if (s.acked && now - s.last_sent >= m_keepalive_every)  // a long request: still here
      push_to_locked(peer, make_keepalive());
  }
  if (m_inbox.empty()) return std::nullopt;
  incoming in = std::move(m_inbox.front());
  m_inbox.pop_front();
  return in;
}

steady::time_point kserve_server::next_release() const noexcept {
  std::lock_guard lock(m_mutex);
  auto next = steady::time_point::max();
  for (const auto& [peer, s] : m_sessions) {
    if (s.ending) continue;
    if (!s.stream && s.pending.empty()) next = std::min(next, s.last_active + m_session_idle);
    if (s.acked && m_keepalive_every != std::chrono::milliseconds::max())
      next = std::min(next, s.last_sent + m_keepalive_every);
  }
  return next;
}

std::string kserve_server::describe(int peer) const {
  std::lock_guard lock(m_mutex);
  auto it = m_sessions.find(peer);
  if (it == m_sessions.end()) return "KServe session " + std::to_string(peer);
  return "KServe client " + it->second.client + (it->second.stream ? " (stream, session " : " (session ") +
         std::to_string(peer) + ")";
}

void kserve_server::forget(int peer) {
  std::lock_guard lock(m_mutex);
  m_sessions.erase(peer);
}

void kserve_server::post(outgoing o) {
  // The receiver's answer: flatten a gathered one (its payloads lie elsewhere) to read it.
  buffer flat;
  const auto bytes = kserve::readable(o.m, m_pool, flat);
  auto view = decode(bytes, m_limits);
  std::vector<std::shared_ptr<answer_sink>> sinks;
  std::vector<grpc::Status> statuses;
  std::vector<std::unique_ptr<inf::ModelInferResponse>> responses;
  {
    std::lock_guard lock(m_mutex);
    auto it = m_sessions.find(o.dest);
    if (it == m_sessions.end() || !view) return;  // a session gone: nobody waits for it
    auto& s = it->second;
    s.last_sent = steady::now();
    const auto& h = view.value().header;
    if (h.kind == message_kind::hello_ack) {
      buffer copy(bytes.size());  // (parse_hello reads a message)
      std::memcpy(copy.data(), bytes.data(), bytes.size());
      auto ack = message::from(std::move(copy), m_limits);
      const auto info = ack ? parse_hello(ack.value()) : hello_info{};
      if (h.status != status::ok || !ack || !info.ok() || !info.terms) {
        // The receiver refused a hello listing its own kernels: only a defect gets here.
        offload::logger()->error("KServe v2: the receiver refused session {}: {}", o.dest,
                                 info.ok() ? std::string(to_string(h.status)) : info.error);
        fail_pending_locked(s, {grpc::StatusCode::INTERNAL, "the receiver refused this session"}, sinks, statuses);
        end_session_locked(o.dest, s, true);
        responses.resize(sinks.size());
      } else {
        s.acked = true;
        s.credits = info.terms->credits;
        if (info.terms->idle_timeout_ms > 0) {
          const std::chrono::milliseconds quarter(info.terms->idle_timeout_ms / 4);
          m_session_idle = std::min(m_session_idle, quarter);
          m_keepalive_every = quarter;
        }
        release_backlog_locked(o.dest, s);
      }
    } else if (h.kind == message_kind::reply || h.kind == message_kind::error) {
      answer_locked(o.dest, s, view.value(), sinks, statuses, responses);
    }
  }
  for (std::size_t i = 0; i < sinks.size(); ++i) sinks[i]->answer(statuses[i], std::move(responses[i]));
  m_wake();
}

void kserve_server::answer_locked(int peer, session& s, const message_view& view,
                                  std::vector<std::shared_ptr<answer_sink>>& sinks, std::vector<grpc::Status>& statuses,
                                  std::vector<std::unique_ptr<inf::ModelInferResponse>>& responses) {
  const auto& h = view.header;
  auto p = s.pending.find(h.request_id);
  if (p == s.pending.end()) return;
  --s.outstanding;
  s.last_active = steady::now();
  model_entry& m = *p->second.model;
  const auto took =
      std::uint64_t(std::chrono::duration_cast<std::chrono::nanoseconds>(steady::now() - p->second.arrived).count());
  std::unique_ptr<inf::ModelInferResponse> response;
  grpc::Status st;
  if (h.kind == message_kind::reply) {
    response = std::make_unique<inf::ModelInferResponse>();
    st = kserve::fill_response(view, m.io, p->second.call, *response);
  } else {
    st = kserve::status_of_error(h.status, error_text(view));
  }
  if (st.ok()) {
    m.success += 1;
    m.success_ns += took;
    if (h.times[1] >= h.times[0]) m.queue_ns += h.times[1] - h.times[0];
    if (h.times[2] >= h.times[1]) m.infer_ns += h.times[2] - h.times[1];
    m.inferences += p->second.call.rows >= 0 ? std::uint64_t(p->second.call.rows) : 1;
    m.last_ms = std::uint64_t(
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
            .count());
  } else {
    m.fail += 1;
    m.fail_ns += took;
  }
  sinks.push_back(std::move(p->second.sink));
  statuses.push_back(st);
  responses.push_back(std::move(response));
  s.pending.erase(p);
  release_backlog_locked(peer, s);
  // A stream whose client finished sending ends with its last answer.
  if (s.stream && s.half_closed && s.pending.empty()) end_session_locked(peer, s, false);
}

void kserve_server::fill_statistics(const std::string& name, const std::string& version,
                                    inf::ModelStatisticsResponse& out, grpc::Status& error) {
  std::vector<model_entry*> which;
  if (name.empty()) {
    which = m_model_list;
  } else if (auto* m = find_model(name, version, error)) {
    which.push_back(m);
  } else {
    error = {grpc::StatusCode::INVALID_ARGUMENT,
             "requested model '" + name + "'" + (version.empty() ? "" : " version " + version) + " is not available"};
    return;
  }
  error = grpc::Status::OK;
  std::lock_guard lock(m_mutex);
  for (const model_entry* m : which) {
    auto* st = out.add_model_stats();
    st->set_name(std::string(m->k->name()));
    st->set_version(std::string(m->k->version()));
    st->set_last_inference(m->last_ms);
    st->set_inference_count(m->inferences);
    st->set_execution_count(m->success);
    auto* is = st->mutable_inference_stats();
    is->mutable_success()->set_count(m->success);
    is->mutable_success()->set_ns(m->success_ns);
    is->mutable_fail()->set_count(m->fail);
    is->mutable_fail()->set_ns(m->fail_ns);
    is->mutable_queue()->set_count(m->success);
    is->mutable_queue()->set_ns(m->queue_ns);
    is->mutable_compute_infer()->set_count(m->success);
    is->mutable_compute_infer()->set_ns(m->infer_ns);
  }
}

std::unique_ptr<endpoint> make_kserve_server(const kserve_listen& listen, const kernel_registry& kernels,
                                             host_pool& pool, const wire_limits& limits, std::function<void()> wake) {
  return std::make_unique<kserve_server>(listen, kernels, pool, limits, std::move(wake));
}

}  // namespace offload::detail
