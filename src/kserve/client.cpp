// The transmitter's KServe v2 transport (kserve_link): an endpoint whose receivers are KServe v2
// servers, ours or NVIDIA Triton. The transmitter speaks the mpi-offload protocol to it as to
// any endpoint; this one answers the session's messages itself and turns each request into a
// ModelInfer:
//   - hello: a RepositoryIndex (ready models); the answer is a hello_ack listing the models as
//     NAME@VERSION lines (a version pinned in kserve_link::versions stands for the kernel's),
//     with terms of this side's choosing (kserve_link::credits, no idle timeout);
//   - request: ModelInfer, asynchronously (a completion queue with a thread of its own, which
//     destroys each call once it completed: no call outlives the channels), its inputs as raw contents
//     with the shapes the kernel declares (kernel::io), its declared outputs asked for; the
//     response becomes a reply (no server times in the protocol: the reply's three times are
//     when the call was made, made, and answered), a gRPC error an error message;
//   - keepalive: nothing; goodbye: a goodbye_ack at once (the transmitter waits for no reply).
// A server that cannot be reached (UNAVAILABLE other than "busy", the channel down) ends the
// session as a closed connection does over gRPC: the transmitter falls back and reconnects
// with backoff, a new hello being a new RepositoryIndex.

#include "client.hpp"

#include "tensors.hpp"

#include "src/base/clock.hpp"
#include "src/session/handshake.hpp"
#include "src/transport/grpc_security.hpp"

#include <offload/log.hpp>

#include <grpcpp/grpcpp.h>
#include <kserve_proto/grpc_service.grpc.pb.h>

#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

namespace offload::detail {

namespace {

namespace inf = inference;

/// One call in flight: what gRPC's callback needs alive until it runs.
struct call {
  grpc::ClientContext ctx;
  grpc::Status status;
  bool index = false;  // RepositoryIndex (the handshake), else ModelInfer
  inf::ModelInferRequest req;
  inf::ModelInferResponse resp;
  inf::RepositoryIndexRequest index_req;
  inf::RepositoryIndexResponse index_resp;
  std::unique_ptr<grpc::ClientAsyncResponseReader<inf::ModelInferResponse>> infer_reader;
  std::unique_ptr<grpc::ClientAsyncResponseReader<inf::RepositoryIndexResponse>> index_reader;
  std::uint64_t hello_time0 = 0;
  int peer = 0;
  std::uint64_t generation = 0;
  std::uint64_t request_id = 0;
  std::uint32_t kernel_id = 0;
  std::uint64_t sent_ns = 0;
};

struct server {
  std::string address;
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<inf::GRPCInferenceService::Stub> stub;
  std::uint64_t generation = 0;     // a new one at each hello: answers of an older one are dropped
  bool down = false;                // its connection ended (closed sent); a hello opens it again
  std::vector<std::string> models;  // the session's list, by the receiver's kernel id
  std::set<call*> calls;            // in flight, to cancel at the end
};

bool unreachable(const grpc::Status& st) {
  if (st.error_code() != grpc::StatusCode::UNAVAILABLE) return false;
  const auto& m = st.error_message();
  return m.rfind("busy", 0) != 0 && m.find("queue") == std::string::npos;
}

class kserve_client final : public endpoint {
 public:
  kserve_client(const kserve_link& link, const kernel_registry& kernels, host_pool& pool, const wire_limits& limits,
                std::string host, std::function<void()> wake)
      : endpoint(pool, limits.max_message_bytes),
        m_link(link),
        m_kernels(kernels),
        m_limits(limits),
        m_host(std::move(host)),
        m_wake(std::move(wake)) {
    if (link.credits == 0) throw std::invalid_argument("kserve_link::credits must be at least 1");
    for (const auto& [name, version] : link.versions)
      if (kernels.find(name) == nullptr)
        throw std::invalid_argument("kserve_link::versions names kernel '" + name +
                                    "', which this transmitter has not");
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(-1);
    args.SetMaxSendMessageSize(-1);
    args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
    args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
    const auto credentials = channel_credentials(link.security);
    for (const auto& a : link.addresses) {
      server s;
      s.address = a;
      s.channel = grpc::CreateCustomChannel(a, credentials, args);
      s.stub = inf::GRPCInferenceService::NewStub(s.channel);
      m_servers.push_back(std::move(s));
    }
  }

  /// Calls still in flight are cancelled; the completion queue's thread finishes each (and
  /// destroys it) before the queue is shut down and the channels go, so that no gRPC call
  /// outlives its channel.
  ~kserve_client() override {
    {
      std::lock_guard lock(m_mutex);
      m_stopping = true;
      for (auto& s : m_servers)
        for (call* c : s.calls) c->ctx.TryCancel();  // (its completion comes through m_cq, on m_thread)
    }
    {
      std::unique_lock lock(m_mutex);
      m_idle.wait(lock, [&] { return m_in_flight == 0; });
    }
    m_cq.Shutdown();
    m_thread.join();
  }

  std::optional<incoming> receive() override {
    std::lock_guard lock(m_mutex);
    if (m_inbox.empty()) return std::nullopt;
    incoming in = std::move(m_inbox.front());
    m_inbox.pop_front();
    return in;
  }
  std::string describe(int peer) const override {
    return "KServe v2 server " + m_servers.at(std::size_t(peer)).address;
  }
  bool reconnect(int peer) override {
    std::lock_guard lock(m_mutex);
    auto& s = m_servers.at(std::size_t(peer));
    s.down = false;
    ++s.generation;  // answers still coming from before are stale
    return true;     // the next hello asks again
  }

 protected:
  void post(outgoing o) override {
    buffer flat;
    const auto bytes = kserve::readable(o.m, m_pool, flat);
    auto view = decode(bytes, m_limits);
    if (!view) return;  // (our own transmitter's message: cannot happen)
    const auto& h = view.value().header;
    switch (h.kind) {
      case message_kind::hello: hello(o.dest, h.times[0]); break;
      case message_kind::request: request(o.dest, view.value()); break;
      case message_kind::goodbye: push(o.dest, make_goodbye_ack()); break;
      default: break;  // keepalive: a KServe server keeps no session
    }
  }
  bool complete_sends() override { return false; }  // every send is handed to gRPC in post
  std::size_t posted_sends() const noexcept override { return 0; }
  std::size_t abandon_posted(int) override { return 0; }

 private:
  void push(int peer, buffer bytes) {
    {
      std::lock_guard lock(m_mutex);
      incoming in;
      in.source = peer;
      in.size = bytes.size();
      in.bytes = std::move(bytes);
      m_inbox.push_back(std::move(in));
    }
    m_wake();
  }
  void push_closed_locked(int peer, const std::string& why) {
    auto& s = m_servers[std::size_t(peer)];
    if (s.down) return;
    s.down = true;
    incoming in;
    in.source = peer;
    in.closed = true;
    in.closed_reason = why;
    m_inbox.push_back(std::move(in));
  }

  call* start_call(int peer) {
    auto* c = new call;
    c->peer = peer;
    std::lock_guard lock(m_mutex);
    auto& s = m_servers[std::size_t(peer)];
    c->generation = s.generation;
    s.calls.insert(c);
    ++m_in_flight;
    return c;
  }
  /// Forgets a finished call; false when its answer is stale (an older session, or stopping).
  bool end_call_locked(call* c) {
    auto& s = m_servers[std::size_t(c->peer)];
    s.calls.erase(c);
    return !m_stopping && c->generation == s.generation && !s.down;
  }

  /// The completion queue's thread: each call's completion, its answer queued for the
  /// transmitter, the call destroyed.
  void serve_queue() {
    void* tag = nullptr;
    bool ok = false;
    while (m_cq.Next(&tag, &ok)) {
      std::unique_ptr<call> c(static_cast<call*>(tag));
      if (c->index)
        index_done(*c);
      else
        infer_done(*c);
      c.reset();  // (the call goes before the count that lets the destructor go on)
      std::lock_guard lock(m_mutex);
      if (--m_in_flight == 0) m_idle.notify_all();
    }
  }

  void hello(int peer, std::uint64_t hello_time0) {
    {
      std::lock_guard lock(m_mutex);
      auto& s = m_servers[std::size_t(peer)];
      ++s.generation;
      s.down = false;
    }
    call* c = start_call(peer);
    c->index = true;
    c->hello_time0 = hello_time0;
    c->index_req.set_ready(true);
    add_token(c->ctx, m_link.security);
    c->index_reader = m_servers[std::size_t(peer)].stub->AsyncRepositoryIndex(&c->ctx, c->index_req, &m_cq);
    c->index_reader->Finish(&c->index_resp, &c->status, c);
  }
  void index_done(call& c) {
    {
      std::lock_guard lock(m_mutex);
      if (!end_call_locked(&c)) return;
      if (!c.status.ok())
        push_closed_locked(c.peer, "RepositoryIndex: " + c.status.error_message() + " (code " +
                                       std::to_string(int(c.status.error_code())) + ")");
      else
        answer_hello_locked(c.peer, c.index_resp, c.hello_time0);
    }
    m_wake();
  }

  /// The hello_ack of a session: the server's ready models as NAME@VERSION, sorted (a kernel's
  /// pinned version listed as the kernel's own), ok when any is one of our kernels.
  void answer_hello_locked(int peer, const inf::RepositoryIndexResponse& index, std::uint64_t hello_time0) {
    std::set<std::string> lines;
    for (const auto& m : index.models()) {
      if (!m.state().empty() && m.state() != "READY") continue;
      std::string version = m.version();
      const kernel* k = m_kernels.find(m.name());
      if (k != nullptr) {
        auto pin = m_link.versions.find(m.name());
        if (pin != m_link.versions.end() ? pin->second == version : version.empty() || version == k->version())
          version = std::string(k->version());
      }
      if (version.empty()) continue;  // (a model without a version: nothing of ours can call it)
      lines.insert(m.name() + "@" + version);
    }
    std::string list;
    auto& s = m_servers[std::size_t(peer)];
    s.models.clear();
    for (const auto& l : lines) {
      list += l + "\n";
      s.models.push_back(l.substr(0, l.find('@')));
    }
    bool match = false;
    for (const auto& l : lines) match = match || m_kernels.signature().find(l + "\n") != std::string::npos;
    session_terms terms;
    terms.limits = m_limits;
    terms.credits = m_link.credits;
    terms.idle_timeout_ms = 0;
    buffer hello_bytes = make_hello(m_kernels.signature(), hello_time0);
    auto hello_msg = message::from(std::move(hello_bytes), m_limits);
    // The "receiver" is this process: this host's name, so that the transmitter takes its clock
    // offset as 0 (the times of its replies are this process's).
    buffer ack = make_hello_ack(hello_msg.value(), match, list, m_host, terms, now_ns());
    incoming in;
    in.source = peer;
    in.size = ack.size();
    in.bytes = std::move(ack);
    m_inbox.push_back(std::move(in));
  }

  void request(int peer, const message_view& req) {
    const auto id = req.header.request_id;
    const auto kid = req.header.kernel_id;
    std::string model;
    {
      std::lock_guard lock(m_mutex);
      const auto& s = m_servers[std::size_t(peer)];
      if (kid < s.models.size()) model = s.models[kid];
    }
    if (model.empty()) {
      push(peer, encode_error(id, status::unknown_kernel, "no model with id " + std::to_string(kid) + " here"));
      return;
    }
    const kernel* k = m_kernels.find(model);
    const model_io io = k != nullptr ? k->io() : model_io{};
    auto pin = m_link.versions.find(model);
    const std::string version = pin != m_link.versions.end() ? pin->second
                                : k != nullptr               ? std::string(k->version())
                                                             : "";
    call* c = start_call(peer);
    c->request_id = id;
    c->kernel_id = kid;
    kserve::fill_request(req.products, io, model, version, id, c->req);
    if (req.header.times[request_priority] > 0) {
      (*c->req.mutable_parameters())["priority"].set_int64_param(std::int64_t(req.header.times[request_priority]));
    }
    if (req.header.times[request_timeout_ns] > 0)
      c->ctx.set_deadline(std::chrono::system_clock::now() +
                          std::chrono::nanoseconds(req.header.times[request_timeout_ns]));
    c->sent_ns = now_ns();
    add_token(c->ctx, m_link.security);
    c->infer_reader = m_servers[std::size_t(peer)].stub->AsyncModelInfer(&c->ctx, c->req, &m_cq);
    c->infer_reader->Finish(&c->resp, &c->status, c);
  }
  void infer_done(call& c) {
    const std::uint64_t answered = now_ns();
    const grpc::Status& st = c.status;
    {
      std::lock_guard lock(m_mutex);
      if (!end_call_locked(&c)) return;
      if (unreachable(st)) {
        push_closed_locked(
            c.peer, "ModelInfer: " + st.error_message() + " (code " + std::to_string(int(st.error_code())) + ")");
      }
    }
    if (unreachable(st)) {
      m_wake();
      return;
    }
    push(c.peer, st.ok() ? reply_of(c, answered)
                         : encode_error(c.request_id, kserve::status_of_grpc(st.error_code()), st.error_message()));
  }

  /// The reply of a response, or an error (bad_output) naming what is wrong with it.
  buffer reply_of(const call& c, std::uint64_t answered) {
    const auto products = kserve::read_response(c.resp);
    if (!products.problem.empty())
      return encode_error(c.request_id, status::bad_output, "the server's response: " + products.problem);
    if (auto bad = check_specs(products.specs, m_limits))
      return encode_error(c.request_id, status::bad_output, "the server's response: " + bad->text);
    message_info info{message_kind::reply, c.request_id, c.kernel_id, status::ok, {c.sent_ns, c.sent_ns, answered}};
    message_writer w(info, products.specs, m_pool.acquire(std::size_t(message_writer::size_for(products.specs))));
    for (std::size_t i = 0; i < products.specs.size(); ++i) {
      auto to = w.payload(i);
      if (!to.empty()) std::memcpy(to.data(), products.bytes[i].data(), to.size());
    }
    return std::move(w).finish();
  }

  kserve_link m_link;
  const kernel_registry& m_kernels;
  wire_limits m_limits;
  std::string m_host;
  std::function<void()> m_wake;
  std::mutex m_mutex;
  std::condition_variable m_idle;
  std::deque<incoming> m_inbox;
  std::vector<server> m_servers;
  std::size_t m_in_flight = 0;
  bool m_stopping = false;
  grpc::CompletionQueue m_cq;
  std::thread m_thread{[this] { serve_queue(); }};  // (started last: it uses the members above)
};

}  // namespace

std::unique_ptr<endpoint> make_kserve_client(const kserve_link& link, const kernel_registry& kernels, host_pool& pool,
                                             const wire_limits& limits, std::string host, std::function<void()> wake) {
  return std::make_unique<kserve_client>(link, kernels, pool, limits, std::move(host), std::move(wake));
}

}  // namespace offload::detail
