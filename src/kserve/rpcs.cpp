// The KServe v2 front end's gRPC service (gRPC's callback API): the metadata RPCs answered from
// the kernels' declarations on gRPC's threads, ModelInfer and ModelStreamInfer handed to the
// endpoint (server.cpp), which answers them once the receiver has.

#include "front_end.hpp"

#include <kserve_proto/grpc_service.grpc.pb.h>

#include <offload/wire.hpp>

#include <memory>
#include <mutex>

namespace offload::detail::kserve_front {

namespace {

namespace inf = inference;

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

/// ModelStreamInfer: each request read is submitted; answers are written in the order they
/// complete, errors as a response with error_message (the stream goes on).
class stream_reactor final : public grpc::ServerBidiReactor<inf::ModelInferRequest, inf::ModelStreamInferResponse>,
                             public std::enable_shared_from_this<stream_reactor> {
 public:
  stream_reactor(kserve_server& server, std::string client, client_identity who, std::size_t window)
      : m_server(server), m_client(std::move(client)), m_who(std::move(who)), m_window(window) {}
  void start(std::shared_ptr<stream_reactor> self) {
    m_self = std::move(self);
    m_peer = m_server.open_stream_session(m_client, m_who);
    if (m_peer < 0) {  // (a drain began since the call was let in)
      Finish({grpc::StatusCode::UNAVAILABLE, "draining: this server is shutting down"});
      return;
    }
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
    m_server.submit(m_request, m_client, m_who, m_peer, std::make_shared<forwarder>(shared_from_this()));
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
  client_identity m_who;
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

/// A stream refused at its start (no valid token): finished at once with the refusal.
class refused_stream final : public grpc::ServerBidiReactor<inf::ModelInferRequest, inf::ModelStreamInferResponse> {
 public:
  explicit refused_stream(const grpc::Status& st) { Finish(st); }
  void OnDone() override { delete this; }
};

/// The RPCs. Metadata is answered on gRPC's thread from the kernels' declarations. Every call
/// first shows its token when the server has a tokens file (kserve_server::authorize).
class service final : public inf::GRPCInferenceService::CallbackService {
 public:
  explicit service(kserve_server& s) : m_server(s) {}

  grpc::ServerUnaryReactor* ServerLive(grpc::CallbackServerContext* c, const inf::ServerLiveRequest*,
                                       inf::ServerLiveResponse* r) override {
    if (auto st = allowed(c); !st.ok()) return done(c, st);
    r->set_live(true);
    return done(c, grpc::Status::OK);
  }
  grpc::ServerUnaryReactor* ServerReady(grpc::CallbackServerContext* c, const inf::ServerReadyRequest*,
                                        inf::ServerReadyResponse* r) override {
    if (auto st = allowed(c); !st.ok()) return done(c, st);
    r->set_ready(!m_server.draining());  // (a drain: clients and load balancers go elsewhere)
    return done(c, grpc::Status::OK);
  }
  grpc::ServerUnaryReactor* ServerMetadata(grpc::CallbackServerContext* c, const inf::ServerMetadataRequest*,
                                           inf::ServerMetadataResponse* r) override {
    if (auto st = allowed(c); !st.ok()) return done(c, st);
    r->set_name("mpi-offload");
    r->set_version(std::to_string(wire_version));
    for (const char* e : {"model_configuration", "statistics"}) r->add_extensions(e);
    return done(c, grpc::Status::OK);
  }
  grpc::ServerUnaryReactor* ModelReady(grpc::CallbackServerContext* c, const inf::ModelReadyRequest* q,
                                       inf::ModelReadyResponse* r) override {
    if (auto st = allowed(c); !st.ok()) return done(c, st);
    grpc::Status st;
    r->set_ready(!m_server.draining() && m_server.find_model(q->name(), q->version(), st) != nullptr);
    return done(c, grpc::Status::OK);
  }
  grpc::ServerUnaryReactor* ModelMetadata(grpc::CallbackServerContext* c, const inf::ModelMetadataRequest* q,
                                          inf::ModelMetadataResponse* r) override {
    if (auto st = allowed(c); !st.ok()) return done(c, st);
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
    if (auto st = allowed(c); !st.ok()) return done(c, st);
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
    if (auto st = allowed(c); !st.ok()) return done(c, st);
    grpc::Status st;
    m_server.fill_statistics(q->name(), q->version(), *r, st);
    return done(c, st);
  }
  grpc::ServerUnaryReactor* RepositoryIndex(grpc::CallbackServerContext* c, const inf::RepositoryIndexRequest*,
                                            inf::RepositoryIndexResponse* r) override {
    if (auto st = allowed(c); !st.ok()) return done(c, st);
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
    client_identity who;
    std::string client;
    if (auto st = m_server.authorize(c, who, client); !st.ok()) return done(c, st);
    auto* reactor = c->DefaultReactor();
    m_server.submit(*q, client, who, -1, std::make_shared<unary_sink>(reactor, r));
    return reactor;
  }
  grpc::ServerBidiReactor<inf::ModelInferRequest, inf::ModelStreamInferResponse>* ModelStreamInfer(
      grpc::CallbackServerContext* c) override {
    client_identity who;
    std::string client;
    if (auto st = m_server.authorize(c, who, client); !st.ok()) return new refused_stream(st);
    if (m_server.draining())
      return new refused_stream({grpc::StatusCode::UNAVAILABLE, "draining: this server is shutting down"});
    auto s = std::make_shared<stream_reactor>(m_server, client, std::move(who), m_server.max_backlog());
    s->start(s);
    return s.get();
  }

 private:
  grpc::Status allowed(grpc::CallbackServerContext* c) {
    client_identity who;
    std::string client;
    return m_server.authorize(c, who, client);
  }
  static grpc::ServerUnaryReactor* done(grpc::CallbackServerContext* c, const grpc::Status& st) {
    auto* r = c->DefaultReactor();
    r->Finish(st);
    return r;
  }
  kserve_server& m_server;
};

}  // namespace

std::unique_ptr<grpc::Service> make_service(kserve_server& server) {
  return std::make_unique<service>(server);
}

}  // namespace offload::detail::kserve_front
