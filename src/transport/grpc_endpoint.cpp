#include "grpc_endpoint.hpp"

#include "grpc_security.hpp"

#include <offload/log.hpp>

#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/resource_quota.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <thread>

namespace offload::detail {

namespace {

/// What the streams of one endpoint share with its progress-thread side.
struct shared_state {
  shared_state(host_pool& p, std::uint64_t max, std::function<void()> w)
      : pool(p), max_receive(max), wake(std::move(w)) {}
  host_pool& pool;
  std::uint64_t max_receive;
  std::function<void()> wake;
  std::mutex mutex;
  std::deque<incoming> arrived;  // guarded by mutex
  std::atomic<std::size_t> posted{0};
  std::atomic<bool> completed{false};       // a send completed since complete_sends() last looked
  std::atomic<std::size_t> others_done{0};  // (server) streams of other methods finished, not yet freed
  std::size_t max_queued = 0;               // (server) messages waiting for one stream before it is cut off
  std::condition_variable op_completed;     // with mutex: an operation of some stream completed
  // (server) Shut before the completion queues are: no operation may begin after that (gRPC
  // aborts), and a handler that runs later begins none.
  std::shared_mutex ops_gate;
  bool ops_closed = false;  // guarded by ops_gate

  void push(incoming in) {
    {
      std::lock_guard lock(mutex);
      arrived.push_back(std::move(in));
    }
    wake();
  }
  /// Wakes whoever waits for streams to end. Taking the mutex orders this after a waiter's
  /// check of the streams' state, so the wake-up cannot fall between its check and its wait.
  void notify_op_completed() {
    { std::lock_guard lock(mutex); }
    op_completed.notify_all();
  }
};

class stream;

/// A completion-queue tag: a stream and one of its operations.
struct op {
  enum kind_t { start, read, write, writes_done, finish } kind;
  stream* s;
};

/// One bidirectional stream, client or server side: at most one read and one write
/// outstanding (gRPC's rule), sends queued behind the write in progress, every read re-armed
/// until the other side closes. Handlers run on completion-queue threads; post() and cancel()
/// on the progress thread; the mutex orders them.
class stream {
 public:
  stream(shared_state& shared, int peer) : m_shared(shared), m_peer(peer) {}
  virtual ~stream() = default;

  /// Dispatches a completed operation. The stream may be destroyed by the progress thread as
  /// soon as its `closed` incoming is pushed, so that push is the last thing done here.
  void on(op::kind_t kind, bool ok) {
    shared_state& shared = m_shared;  // (the stream may be gone once the lock is released)
    if (kind == op::start) starting(ok);
    std::optional<incoming> arrived;
    {
      std::lock_guard lock(m_mutex);
      --m_ops;
      switch (kind) {
        case op::start: on_start(ok); break;
        case op::read: arrived = on_read(ok); break;
        case op::write: on_write(ok); break;
        case op::writes_done: break;
        case op::finish:
          m_done = true;
          if (m_peer < 0) {  // a stream of another method: nobody to tell; the endpoint frees it
            shared.others_done.fetch_add(1);
            break;
          }
          arrived = incoming{};
          arrived->source = m_peer;
          arrived->closed = true;
          arrived->closed_reason = m_cut_reason.empty() ? closed_reason() : m_cut_reason;
          break;
      }
      maybe_finish();
    }
    // Neither touches the stream, which may be gone once its end is pushed.
    if (arrived) shared.push(std::move(*arrived));
    shared.notify_op_completed();
  }

  /// Queues a message; dropped (its buffer released) when the stream is over. A stream with
  /// `max_queued` messages already waiting is cut off: its client does not read.
  void post(outgoing o) {
    std::lock_guard lock(m_mutex);
    if (m_broken || m_finishing || m_done || m_closing) return;
    if (m_shared.max_queued > 0 && m_writes.size() >= m_shared.max_queued) {
      m_cut_reason = "cut off: " + std::to_string(m_writes.size()) + " messages were waiting for it to read";
      m_broken = true;
      drop_queued();
      if (!m_done) try_cancel();
      return;
    }
    m_writes.push_back(std::move(o));
    m_shared.posted.fetch_add(1);
    if (m_open && !m_writing) start_write();
  }

  /// Ends the stream at once: every operation completes, failed. Returns the sends given up.
  std::size_t cancel() {
    std::lock_guard lock(m_mutex);
    const std::size_t n = m_writes.size();
    m_broken = true;
    drop_queued();
    if (!m_done) try_cancel();
    return n;
  }

  /// Client: no more writes after those queued (the server then finishes the stream).
  void close_writes() {
    std::lock_guard lock(m_mutex);
    m_closing = true;
    maybe_close_writes();
  }

  bool done() const {
    std::lock_guard lock(m_mutex);
    return m_done && m_ops == 0;
  }

  /// (server) Why this stream should be cut off at `now`, if it should: nothing received within
  /// `hello_timeout` of opening, or a reply waiting longer than `write_timeout` to be read.
  std::string overdue(std::chrono::steady_clock::time_point now, std::chrono::milliseconds hello_timeout,
                      std::chrono::milliseconds write_timeout) const {
    std::lock_guard lock(m_mutex);
    if (m_done || m_broken || !m_open) return {};
    if (!m_heard && hello_timeout.count() > 0 && now - m_opened_at > hello_timeout)
      return "cut off: it sent nothing within " + std::to_string(hello_timeout.count()) + " ms of opening";
    if (m_writing && write_timeout.count() > 0 && now - m_write_since > write_timeout)
      return "cut off: a reply waited more than " + std::to_string(write_timeout.count()) + " ms for it to read";
    return {};
  }
  /// Over, or on its way out (cut, failed, finishing): it no longer counts as open.
  bool ending() const {
    std::lock_guard lock(m_mutex);
    return m_done || m_broken || m_finishing;
  }
  /// Ends the stream, saying why (its `closed` incoming carries the reason).
  void cut(const std::string& why) {
    std::lock_guard lock(m_mutex);
    if (m_done || m_broken) return;
    m_cut_reason = why;
    m_broken = true;
    drop_queued();
    try_cancel();
  }

 protected:
  // What differs between the client and the server side.
  virtual void do_read(grpc::ByteBuffer* into, void* tag) = 0;
  virtual void do_write(const grpc::ByteBuffer& b, void* tag) = 0;
  virtual void do_writes_done(void* tag) = 0;
  virtual void do_finish(void* tag) = 0;
  virtual void try_cancel() = 0;
  virtual std::string closed_reason() const = 0;
  /// Called first for the start operation, without the stream's mutex: a server registers the
  /// stream with its endpoint here, whose mutex is taken before a stream's, never after.
  virtual void starting(bool) {}
  /// The stream is open (client: started; server: accepted): reads and writes may begin.
  virtual void on_start(bool ok) = 0;

  void opened() {
    m_open = true;
    m_opened_at = std::chrono::steady_clock::now();
    arm_read();
    if (!m_writes.empty()) start_write();
  }
  void fail_start() {  // the call failed to start or was turned away: Finish ends it
    m_broken = true;
    m_read_closed = true;
    drop_queued();
  }
  void never_started() {  // a server's call that was never accepted: there is nothing to finish
    m_broken = m_read_closed = m_finishing = m_done = true;
  }

  shared_state& m_shared;
  int m_peer;
  mutable std::mutex m_mutex;
  bool m_closing = false;

 private:
  void arm_read() {
    begin_op([&] { do_read(&m_read_buffer, &m_read_op); });
  }

  void start_write() {
    outgoing& o = m_writes.front();
    // One slice per piece of the message as it lies (a gathered message: its head, each
    // payload and the padding after it), so that no payload is copied; each slice holds a
    // reference to what keeps the bytes alive.
    // (gRPC may hold a slice past the write's completion: the message lives as long as any.)
    const auto held = std::make_shared<outgoing_message>(std::move(o.m));
    std::vector<grpc::Slice> slices;
    auto add = [&](const std::byte* data, std::size_t n) {
      if (n == 0) return;
      slices.emplace_back(
          const_cast<std::byte*>(data), n, [](void* p) { delete static_cast<std::shared_ptr<outgoing_message>*>(p); },
          new std::shared_ptr<outgoing_message>(held));
    };
    add(held->head.data(), held->head.size());
    std::uint64_t pos = held->head.size();
    static constexpr std::byte zeros[wire_alignment]{};
    for (const auto& [offset, bytes] : held->payloads) {
      add(zeros, static_cast<std::size_t>(offset - pos));  // padding: under 64 bytes
      add(bytes.data(), bytes.size());
      pos = offset + bytes.size();
    }
    if (!held->contiguous()) add(zeros, static_cast<std::size_t>(held->total_size - pos));
    m_write_buffer = grpc::ByteBuffer(slices.data(), slices.size());
    m_writing = begin_op([&] { do_write(m_write_buffer, &m_write_op); });
    m_write_since = std::chrono::steady_clock::now();
  }

  std::optional<incoming> on_read(bool ok) {
    if (!ok) {  // the other side closed its writes, or the stream failed
      m_read_closed = true;
      return std::nullopt;
    }
    m_heard = true;
    incoming in;
    in.source = m_peer;
    in.size = m_read_buffer.Length();
    in.oversized = in.size > m_shared.max_receive;
    // Oversized: keep just the header, for the request id of the error reply.
    const std::size_t keep = in.oversized ? std::min<std::size_t>(in.size, 64) : in.size;
    in.bytes = in.oversized ? buffer(keep) : m_shared.pool.acquire(keep);
    std::vector<grpc::Slice> slices;
    if (!m_read_buffer.Dump(&slices).ok()) slices.clear();
    std::size_t at = 0;
    for (const auto& s : slices) {
      const std::size_t n = std::min(s.size(), keep - at);
      std::memcpy(in.bytes.data() + at, s.begin(), n);
      at += n;
      if (at == keep) break;
    }
    m_read_buffer.Clear();
    if (!m_broken) arm_read();
    return in;
  }

  void on_write(bool ok) {
    m_writing = false;
    m_write_buffer.Clear();
    m_writes.pop_front();
    m_shared.posted.fetch_sub(1);
    m_shared.completed.store(true);
    if (!ok) {
      m_broken = true;
      drop_queued();
    }
    if (!m_writes.empty() && !m_broken) start_write();
    maybe_close_writes();
  }

  void drop_queued() {
    // The one being written (if any) is gRPC's until its completion comes.
    const std::size_t keep = m_writing ? 1 : 0;
    const std::size_t n = m_writes.size() - keep;
    m_writes.resize(keep);
    if (n > 0) {
      m_shared.posted.fetch_sub(n);
      m_shared.completed.store(true);
    }
  }

  void maybe_close_writes() {
    if (!m_closing || m_writes_done || !m_open || m_writing || m_broken || m_done || !m_writes.empty()) return;
    m_writes_done = true;
    begin_op([&] { do_writes_done(&m_writes_done_op); });
  }

  void maybe_finish() {
    // Both sides finish once nothing more can be read and no write is outstanding.
    if (!m_read_closed || m_writing || m_finishing) return;
    m_finishing = true;
    begin_op([&] { do_finish(&m_finish_op); });
  }

 protected:
  /// Begins a gRPC operation (the stream's mutex held) unless the endpoint has shut its
  /// completion queues; false when it did not.
  template <class F> bool begin_op(F&& start) {
    std::shared_lock gate(m_shared.ops_gate);
    if (m_shared.ops_closed) return false;
    ++m_ops;
    start();
    return true;
  }

  int m_ops = 0;  // operations whose tag has not come back

 private:
  std::deque<outgoing> m_writes;  // the front is being written while m_writing
  std::string m_cut_reason;       // why this side ended the stream, if it did
  bool m_open = false;
  bool m_heard = false;  // a message arrived
  std::chrono::steady_clock::time_point m_opened_at, m_write_since;
  bool m_writing = false;
  bool m_read_closed = false;
  bool m_broken = false;
  bool m_writes_done = false;
  bool m_finishing = false;
  bool m_done = false;
  grpc::ByteBuffer m_read_buffer;
  grpc::ByteBuffer m_write_buffer;
  op m_read_op{op::read, this};
  op m_write_op{op::write, this};
  op m_writes_done_op{op::writes_done, this};
  op m_finish_op{op::finish, this};

 protected:
  op m_start_op{op::start, this};
};

/// Serves a completion queue until it is shut down and drained.
void serve_queue(grpc::CompletionQueue& cq) {
  void* tag = nullptr;
  bool ok = false;
  while (cq.Next(&tag, &ok)) {
    auto* o = static_cast<op*>(tag);
    o->s->on(o->kind, ok);
  }
}

// ---- client ----

class client_stream final : public stream {
 public:
  client_stream(shared_state& shared, int peer, grpc::GenericStub& stub, grpc::CompletionQueue& cq, std::string address,
                const client_security& security)
      : stream(shared, peer), m_address(std::move(address)), m_tls(!security.tls_ca.empty()) {
    std::lock_guard lock(m_mutex);
    add_token(m_context, security);
    m_call = stub.PrepareCall(&m_context, grpc_session_method, &cq);
    ++m_ops;
    m_call->StartCall(&m_start_op);
  }

 private:
  void on_start(bool ok) override {
    if (ok)
      opened();
    else
      fail_start();
  }
  void do_read(grpc::ByteBuffer* into, void* tag) override { m_call->Read(into, tag); }
  void do_write(const grpc::ByteBuffer& b, void* tag) override { m_call->Write(b, tag); }
  void do_writes_done(void* tag) override { m_call->WritesDone(tag); }
  void do_finish(void* tag) override { m_call->Finish(&m_status, tag); }
  void try_cancel() override { m_context.TryCancel(); }
  std::string closed_reason() const override {
    if (m_status.ok()) return "the receiver at " + m_address + " ended the stream";
    // (A TLS server closes a plaintext connection at once; gRPC says only "Socket closed".)
    const bool hint = !m_tls && m_status.error_code() == grpc::StatusCode::UNAVAILABLE;
    return "gRPC stream to " + m_address + " failed: " + m_status.error_message() + " (code " +
           std::to_string(static_cast<int>(m_status.error_code())) + ")" +
           (hint ? " [this client speaks plaintext: if the receiver serves TLS, give its CA (--tls-ca)]" : "");
  }

  std::string m_address;
  bool m_tls;
  grpc::ClientContext m_context;
  std::unique_ptr<grpc::GenericClientAsyncReaderWriter> m_call;
  grpc::Status m_status;
};

grpc::ChannelArguments channel_arguments() {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(-1);  // mpi-offload's own limits apply, and answer with an error
  args.SetMaxSendMessageSize(-1);
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);  // a connection per transmitter, as with MPI
  // A receiver that is down or restarting is tried again within a second (gRPC's default
  // backoff grows to 120 s): the transmitter's own retries (transmitter_config::reconnect_max)
  // then find the channel connecting, not waiting out its backoff.
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  return args;
}

class grpc_client final : public endpoint {
 public:
  grpc_client(const grpc_link& link, host_pool& pool, std::uint64_t max_receive, std::function<void()> wake)
      : endpoint(pool, max_receive),
        m_shared(pool, max_receive, std::move(wake)),
        m_addresses(link.addresses),
        m_security(link.security) {
    const auto credentials = channel_credentials(m_security);
    for (std::size_t i = 0; i < m_addresses.size(); ++i) {
      auto channel = grpc::CreateCustomChannel(m_addresses[i], credentials, channel_arguments());
      m_stubs.push_back(std::make_unique<grpc::GenericStub>(channel));
      m_streams.push_back(std::make_unique<client_stream>(m_shared, static_cast<int>(i), *m_stubs.back(), m_cq,
                                                          m_addresses[i], m_security));
    }
    m_thread = std::thread([this] { serve_queue(m_cq); });
  }

  ~grpc_client() override {
    // Close writes; each receiver then finishes its stream. Streams not done in a second are cancelled.
    for (auto& s : m_retired) m_streams.push_back(std::move(s));
    for (auto& s : m_streams) s->close_writes();
    auto all_done = [&] {
      return std::all_of(m_streams.begin(), m_streams.end(), [](const auto& s) { return s->done(); });
    };
    std::unique_lock lock(m_shared.mutex);
    if (!m_shared.op_completed.wait_for(lock, std::chrono::seconds(1), all_done)) {
      lock.unlock();
      for (auto& s : m_streams)
        if (!s->done()) s->cancel();
      lock.lock();
      m_shared.op_completed.wait(lock, all_done);
    }
    lock.unlock();
    m_cq.Shutdown();
    m_thread.join();
  }

  std::optional<incoming> receive() override {
    std::lock_guard lock(m_shared.mutex);
    if (m_shared.arrived.empty()) return std::nullopt;
    incoming in = std::move(m_shared.arrived.front());
    m_shared.arrived.pop_front();
    return in;
  }
  std::string describe(int peer) const override {
    return peer >= 0 && std::size_t(peer) < m_addresses.size() ? m_addresses[std::size_t(peer)]
                                                               : "peer " + std::to_string(peer);
  }
  bool reconnect(int peer) override {
    auto& slot = m_streams.at(static_cast<std::size_t>(peer));
    // The old stream pushed its `closed` as the last thing it did; one still busy (never the
    // case when the caller saw that `closed`) is kept until the end.
    if (!slot->done()) m_retired.push_back(std::move(slot));
    slot = std::make_unique<client_stream>(m_shared, peer, *m_stubs[static_cast<std::size_t>(peer)], m_cq,
                                           m_addresses[static_cast<std::size_t>(peer)], m_security);
    return true;
  }

 protected:
  void post(outgoing o) override { m_streams.at(static_cast<std::size_t>(o.dest))->post(std::move(o)); }
  bool complete_sends() override { return m_shared.completed.exchange(false); }
  std::size_t posted_sends() const noexcept override { return m_shared.posted.load(); }
  std::size_t abandon_posted(int dest) override { return m_streams.at(static_cast<std::size_t>(dest))->cancel(); }

 private:
  shared_state m_shared;
  std::vector<std::string> m_addresses;
  client_security m_security;
  grpc::CompletionQueue m_cq;
  std::vector<std::unique_ptr<grpc::GenericStub>> m_stubs;
  std::vector<std::unique_ptr<client_stream>> m_streams;
  std::vector<std::unique_ptr<client_stream>> m_retired;  // replaced by reconnect() before they were done
  std::thread m_thread;
};

// ---- server ----

class grpc_server;

class server_stream final : public stream {
 public:
  server_stream(shared_state& shared, grpc_server& server, grpc::ServerCompletionQueue& cq)
      : stream(shared, -1), m_server(server), m_cq(cq), m_call(&m_context) {}
  void request(grpc::AsyncGenericService& service) {
    std::lock_guard lock(m_mutex);
    ++m_ops;
    service.RequestCall(&m_context, &m_call, &m_cq, &m_cq, &m_start_op);
  }
  const std::string& description() const noexcept { return m_description; }
  /// A stream turned away at its start (another method: UNIMPLEMENTED; no valid token:
  /// UNAUTHENTICATED), read once it is done.
  bool turned_away() const noexcept { return m_peer < 0 && !m_refusal.ok(); }

 private:
  void starting(bool ok) override;
  void on_start(bool ok) override;
  void do_read(grpc::ByteBuffer* into, void* tag) override { m_call.Read(into, tag); }
  void do_write(const grpc::ByteBuffer& b, void* tag) override { m_call.Write(b, tag); }
  void do_writes_done(void*) override {}  // the server ends its writes with Finish
  void do_finish(void* tag) override { m_call.Finish(m_refusal, tag); }
  void try_cancel() override { m_context.TryCancel(); }
  std::string closed_reason() const override { return "the stream from " + m_description + " ended"; }

  grpc_server& m_server;
  grpc::ServerCompletionQueue& m_cq;
  grpc::GenericServerContext m_context;
  grpc::GenericServerAsyncReaderWriter m_call;
  std::string m_description;
  grpc::Status m_refusal;  // OK: accepted
};

class grpc_server final : public endpoint {
 public:
  grpc_server(const grpc_listen& listen, host_pool& pool, std::uint64_t max_receive, std::size_t max_queued,
              std::function<void()> wake)
      : endpoint(pool, max_receive),
        m_shared(pool, max_receive, std::move(wake)),
        m_gate(listen.security.tokens, "gRPC receiver"),
        m_limits(listen) {
    const std::string& address = listen.address;
    const std::size_t threads = listen.threads;
    m_shared.max_queued = max_queued;
    int& bound_port = m_port;
    if (threads == 0) throw std::invalid_argument("a gRPC receiver needs at least 1 completion-queue thread");
    if (listen.memory_bytes > 0 && listen.memory_bytes < max_receive)
      throw std::invalid_argument("the gRPC memory bound (" + std::to_string(listen.memory_bytes) +
                                  " bytes) is below the largest message accepted (" + std::to_string(max_receive) +
                                  " bytes): such messages would be reset, not received");
    grpc::ServerBuilder builder;
    // mpi-offload's own limit applies, and answers with a too_large error on the stream. (gRPC
    // 1.51's own limit would not save memory: it receives the whole message before checking
    // its length, measured in results/reliability.md; the resource quota bounds that.)
    builder.SetMaxReceiveMessageSize(-1);
    builder.SetMaxSendMessageSize(-1);
    if (listen.memory_bytes > 0) {
      grpc::ResourceQuota quota("offload receiver at " + listen.address);
      quota.Resize(listen.memory_bytes);
      builder.SetResourceQuota(quota);
    }
    builder.AddListeningPort(address, server_credentials(address, listen.security), &bound_port);
    builder.RegisterAsyncGenericService(&m_service);
    for (std::size_t i = 0; i < threads; ++i) m_queues.push_back(builder.AddCompletionQueue());
    m_server = builder.BuildAndStart();
    if (!m_server || bound_port == 0)
      throw grpc_unavailable("cannot listen for gRPC on '" + address + "' (is the address valid, the port free?)");
    for (auto& q : m_queues) accept_next(*q);
    for (auto& q : m_queues) m_threads.emplace_back([&cq = *q] { serve_queue(cq); });
  }

  int port() const noexcept override { return m_port; }

  ~grpc_server() override {
    {
      std::lock_guard lock(m_mutex);
      m_shutting_down = true;
    }
    // Streams still open get a moment to finish, then are cancelled.
    m_server->Shutdown(std::chrono::system_clock::now() + std::chrono::milliseconds(500));
    {
      std::unique_lock gate(m_shared.ops_gate);
      m_shared.ops_closed = true;
    }
    for (auto& q : m_queues) q->Shutdown();
    for (auto& t : m_threads) t.join();
  }

  token_gate& gate() noexcept { return m_gate; }
  void drain() override { m_draining.store(true); }
  bool draining() const noexcept { return m_draining.load(); }
  /// A stream from `address` (gRPC's peer: "ipv4:10.0.0.7:53412") arrived on `cq`: it becomes
  /// the next peer (of `who`), or -1 when that address has max_streams_per_address open
  /// (`refusal` set); the queue accepts another either way.
  int accepted(server_stream& s, grpc::ServerCompletionQueue& cq, client_identity who, const std::string& address,
               grpc::Status& refusal) {
    std::lock_guard lock(m_mutex);
    if (!m_shutting_down) accept_next(cq);
    const std::string host = address.substr(0, address.rfind(':'));
    if (m_limits.max_streams_per_address > 0) {
      std::size_t open = 0;  // (streams on their way out do not count)
      for (const auto& [peer, h] : m_hosts) open += h == host && !m_peers.at(peer)->ending() ? 1 : 0;
      if (open >= m_limits.max_streams_per_address) {
        refusal =
            grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED, std::to_string(open) + " streams from " + host +
                                                                   " are open, its most (max_streams_per_address)");
        return -1;
      }
    }
    const int peer = m_next_peer++;
    m_peers.emplace(peer, &s);
    m_hosts.emplace(peer, host);
    if (m_gate.required()) m_clients.emplace(peer, std::move(who));
    return peer;
  }
  std::optional<client_identity> client_of(int peer) const override {
    std::lock_guard lock(m_mutex);
    auto it = m_clients.find(peer);
    return it != m_clients.end() ? std::optional(it->second) : std::nullopt;
  }
  std::uint64_t unauthenticated() const override { return m_gate.refused(); }
  void accept_other(grpc::ServerCompletionQueue& cq) {  // a stream of another method was turned away
    std::lock_guard lock(m_mutex);
    if (!m_shutting_down) accept_next(cq);
  }

  std::optional<incoming> receive() override {
    if (m_shared.others_done.load() > 0) release_other_streams();
    cut_overdue();
    std::optional<incoming> in;
    {
      std::lock_guard lock(m_shared.mutex);
      if (m_shared.arrived.empty()) return std::nullopt;
      in = std::move(m_shared.arrived.front());
      m_shared.arrived.pop_front();
    }
    if (in->closed) release_stream(in->source);
    return in;
  }
  std::string describe(int peer) const override {
    std::lock_guard lock(m_mutex);
    auto it = m_descriptions.find(peer);
    return it != m_descriptions.end() ? it->second : "peer " + std::to_string(peer);
  }
  void forget(int peer) override {
    std::lock_guard lock(m_mutex);
    m_descriptions.erase(peer);
    m_clients.erase(peer);
  }
  void describe_as(int peer, std::string text) {
    std::lock_guard lock(m_mutex);
    m_descriptions[peer] = std::move(text);
  }

 protected:
  void post(outgoing o) override {
    if (auto* s = find(o.dest)) s->post(std::move(o));  // (a stream that ended takes nothing)
  }
  bool complete_sends() override { return m_shared.completed.exchange(false); }
  std::size_t posted_sends() const noexcept override { return m_shared.posted.load(); }
  std::size_t abandon_posted(int dest) override {
    auto* s = find(dest);
    return s != nullptr ? s->cancel() : 0;
  }

 private:
  void accept_next(grpc::ServerCompletionQueue& cq) {  // m_mutex held
    auto s = std::make_unique<server_stream>(m_shared, *this, cq);
    s->request(m_service);
    m_streams.push_back(std::move(s));
  }
  server_stream* find(int peer) {
    std::lock_guard lock(m_mutex);
    auto it = m_peers.find(peer);
    return it != m_peers.end() ? it->second : nullptr;
  }
  /// A stream whose end was reported is freed here, on the progress thread (its last handler
  /// has returned: pushing that report was the last thing it did).
  void release_stream(int peer) {
    std::lock_guard lock(m_mutex);
    m_hosts.erase(peer);
    if (auto it = m_peers.find(peer); it != m_peers.end()) {
      server_stream* s = it->second;
      m_peers.erase(it);
      std::erase_if(m_streams, [s](const auto& p) { return p.get() == s; });
    }
  }

  /// Every 100 ms: cuts off the streams that said nothing within hello_timeout, or whose reply
  /// waited longer than write_timeout to be read (grpc_listen).
  void cut_overdue() {
    const auto now = std::chrono::steady_clock::now();
    if (now < m_next_scan) return;
    m_next_scan = now + std::chrono::milliseconds(100);
    std::lock_guard lock(m_mutex);
    for (const auto& [peer, s] : m_peers)
      if (auto why = s->overdue(now, m_limits.hello_timeout, m_limits.write_timeout); !why.empty()) {
        offload::logger()->warn("gRPC receiver: {}: {}", s->description(), why);
        s->cut(why);
      }
  }

  /// Frees the finished streams of other methods (turned away at the start).
  void release_other_streams() {
    std::lock_guard lock(m_mutex);
    const auto n = std::erase_if(m_streams, [](const auto& p) { return p->done() && p->turned_away(); });
    m_shared.others_done.fetch_sub(n);
  }

  shared_state m_shared;
  token_gate m_gate;
  std::atomic<bool> m_draining{false};
  int m_port = 0;
  grpc::AsyncGenericService m_service;
  std::vector<std::unique_ptr<grpc::ServerCompletionQueue>> m_queues;
  std::unique_ptr<grpc::Server> m_server;
  std::vector<std::thread> m_threads;
  mutable std::mutex m_mutex;
  bool m_shutting_down = false;
  int m_next_peer = 0;
  std::vector<std::unique_ptr<server_stream>> m_streams;  // accepted, and one waiting per queue
  std::map<int, server_stream*> m_peers;                  // accepted, not yet reported ended
  std::map<int, std::string> m_descriptions;
  std::map<int, client_identity> m_clients;  // (with tokens) whose token each peer presented
  std::map<int, std::string> m_hosts;        // each open stream's client address, without its port
  grpc_listen m_limits;                      // (hello_timeout, write_timeout, max_streams_per_address)
  std::chrono::steady_clock::time_point m_next_scan;
};

void server_stream::starting(bool ok) {
  // (Each stream is served by the one thread of its completion queue: what is set here is
  // read by that thread only, or under the endpoint's mutex.)
  if (!ok) return;
  std::optional<client_identity> who;
  if (m_context.method() != grpc_session_method)
    m_refusal = grpc::Status(grpc::StatusCode::UNIMPLEMENTED,
                             "this server has one method, " + std::string(grpc_session_method));
  else if (m_server.draining())
    m_refusal = grpc::Status(grpc::StatusCode::UNAVAILABLE, "draining: this receiver is shutting down");
  else
    who = m_server.gate().check(m_context.client_metadata(), m_context.peer(), m_refusal);
  if (!m_refusal.ok()) {
    m_server.accept_other(m_cq);
    return;
  }
  m_peer = m_server.accepted(*this, m_cq, *who, m_context.peer(), m_refusal);
  if (m_peer < 0) return;  // (turned away: on_start finishes it with m_refusal)
  m_description = "peer " + std::to_string(m_peer) + " (" + m_context.peer() +
                  (who->name.empty() ? "" : ", client " + who->name) + ")";
  m_server.describe_as(m_peer, m_description);
}

void server_stream::on_start(bool ok) {
  if (!ok) {  // the server is shutting down: this stream was never accepted
    never_started();
  } else if (!m_refusal.ok()) {
    fail_start();  // Finish answers UNIMPLEMENTED or UNAUTHENTICATED
  } else {
    opened();
  }
}

}  // namespace

std::unique_ptr<endpoint> make_grpc_client(const grpc_link& link, host_pool& pool, std::uint64_t max_receive_bytes,
                                           std::function<void()> wake) {
  return std::make_unique<grpc_client>(link, pool, max_receive_bytes, std::move(wake));
}

std::unique_ptr<endpoint> make_grpc_server(const grpc_listen& listen, host_pool& pool, std::uint64_t max_receive_bytes,
                                           std::size_t max_queued_sends, std::function<void()> wake) {
  return std::make_unique<grpc_server>(listen, pool, max_receive_bytes, max_queued_sends, std::move(wake));
}

}  // namespace offload::detail
