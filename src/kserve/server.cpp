// The KServe v2 front end: an endpoint (src/transport/endpoint.hpp) whose peers are KServe
// clients. gRPC's callback threads check each ModelInfer against the model's declared tensors
// (tensors.hpp) and hand the receiver a request message of the mpi-offload protocol; the
// receiver's replies and errors come back through post() and finish the RPC. Each client
// connection (gRPC's peer address) or ModelStreamInfer stream is one session of the protocol,
// opened with a hello the endpoint writes for it and ended with a goodbye once it has been
// idle (connections) or has ended (streams), so the receiver's credits, scheduler, fairness,
// limits and counters apply to KServe clients as to transmitters. Requests beyond the credits
// wait here, in order, up to kserve_listen::max_backlog per session.

#include "front_end.hpp"

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

namespace kserve_front {

namespace inf = inference;

kserve_server::kserve_server(const kserve_listen& listen, const kernel_registry& kernels, host_pool& pool,
                             const wire_limits& limits, std::function<void()> wake)
    : endpoint(pool, limits.max_message_bytes),
      m_pool(pool),
      m_limits(limits),
      m_wake(std::move(wake)),
      m_listen(listen),
      m_gate(listen.security.tokens, "KServe v2 server"),
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
      if (m.io.max_batch_size > 0) m.max_batch = std::min(m.max_batch, std::int32_t(m.io.max_batch_size));
    }
  }
  for (auto& [name, m] : m_models) m_model_list.push_back(&m);

  m_service = make_service(*this);
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
  builder.AddListeningPort(listen.address, server_credentials(listen.address, listen.security), &m_port);
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

grpc::Status kserve_server::authorize(grpc::CallbackServerContext* c, client_identity& who, std::string& client) {
  grpc::Status refusal;
  auto found = m_gate.check(c->client_metadata(), c->peer(), refusal);
  if (!found) return refusal;
  who = std::move(*found);
  client = who.name.empty() ? c->peer() : who.name + " at " + c->peer();
  return grpc::Status::OK;
}

std::optional<client_identity> kserve_server::client_of(int peer) const {
  if (!m_gate.required()) return std::nullopt;
  std::lock_guard lock(m_mutex);
  auto it = m_sessions.find(peer);
  return it != m_sessions.end() ? std::optional(it->second.who) : std::nullopt;
}

int kserve_server::open_session_locked(const std::string& client, const client_identity& who, bool stream) {
  const int peer = m_next_peer++;
  auto& s = m_sessions[peer];
  s.client = client;
  s.who = who;
  s.stream = stream;
  s.last_active = steady::now();
  push_to_locked(peer, make_hello(m_signature, now_ns()));
  return peer;
}

int kserve_server::open_stream_session(const std::string& client, const client_identity& who) {
  int peer;
  {
    std::lock_guard lock(m_mutex);
    if (draining()) return -1;
    peer = open_session_locked(client, who, true);
  }
  m_wake();
  return peer;
}

void kserve_server::submit(const inf::ModelInferRequest& req, const std::string& client, const client_identity& who,
                           int stream_session, std::shared_ptr<answer_sink> sink) {
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
      if (it == m_by_client.end() && draining()) {
        lock.unlock();
        sink->answer({grpc::StatusCode::UNAVAILABLE, "draining: this server is shutting down"}, nullptr);
        return;
      }
      peer = it != m_by_client.end() ? it->second : (m_by_client[client] = open_session_locked(client, who, false));
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

}  // namespace kserve_front

std::unique_ptr<endpoint> make_kserve_server(const kserve_listen& listen, const kernel_registry& kernels,
                                             host_pool& pool, const wire_limits& limits, std::function<void()> wake) {
  return std::make_unique<kserve_front::kserve_server>(listen, kernels, pool, limits, std::move(wake));
}

}  // namespace offload::detail
