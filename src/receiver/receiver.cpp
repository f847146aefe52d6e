// The receiver's progress loop: messages in, accepted requests to the scheduler, its batches to
// the executors, replies out (receiver_impl.hpp lists the other units).
#include "receiver_impl.hpp"

#include "src/base/clock.hpp"

#include <offload/log.hpp>

#include <algorithm>
#include <ctime>
#include <limits>

namespace offload {

namespace {
detail::sched_time sched_now() {
  return std::chrono::duration_cast<detail::sched_time>(steady::now().time_since_epoch());
}

/// CPU time of the calling thread, in nanoseconds.
double thread_cpu_ns() {
  timespec t{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return 1e9 * double(t.tv_sec) + double(t.tv_nsec);
}

/// A per-kernel setting by name, or `fallback`.
std::uint32_t per_kernel(const std::map<std::string, std::uint32_t>& m, std::string_view name, std::uint32_t fallback) {
  const auto it = m.find(std::string(name));
  return it == m.end() ? fallback : it->second;
}
}  // namespace

receiver::impl::impl(runtime& r, const kernel_registry& k, const transport& link, std::size_t expected,
                     receiver_config c)
    : rt(r),
      kernels(k),
      expected_peers(expected),
      cfg(std::move(c)),
      pool_ptr(host_pool::make(cfg.memory)),
      ep(listen(link, r)),
      be(cfg.custom_backend ? cfg.custom_backend
                            : detail::make_backend(cfg.backend, cfg.device, r.local_rank(), backend_note)),
      instances(std::max(cfg.threads, be->concurrency())),
      sched(static_cast<std::uint32_t>(cfg.max_threads)) {
  if (!backend_note.empty()) offload::logger()->warn("{}: {}", self, backend_note);
  if (auto pinner = be->host_pinner()) pool.set_pinner(std::move(pinner));  // messages received from now on
  st.backend = be->name();
  st.backend_description = be->description();
  if (cfg.credits == 0) throw std::invalid_argument("receiver credits must be at least 1");
  if (cfg.threads == 0) throw std::invalid_argument("receiver threads must be at least 1");
  add_queues();
  st.batch_sizes.assign(std::size_t(cfg.max_batch > 0 ? cfg.max_batch : 1) + 1, 0);
  last_change = steady::now();
  exec = std::make_unique<detail::executors>(
      *be, pool, [this](long runs, std::uint64_t items) { utilisation(runs, 0, items); }, [this] { rt.wake(); },
      cfg.max_threads > 0 ? std::min(cfg.max_threads, instances) : instances);
}

std::unique_ptr<endpoint> receiver::impl::listen(const transport& link, runtime& r) {
  // Per peer: its replies (at most `credits`), error replies and control messages.
  const std::size_t max_queued = 2 * std::size_t(cfg.credits) + 64;
  auto opened = link.impl().listen(r, {pool, cfg.limits.max_message_bytes, max_queued, &kernels, cfg.limits});
  self = std::move(opened.name);
  return std::move(opened.ep);
}

void receiver::impl::add_queues() {
  for (const auto* m : {&cfg.kernel_instances, &cfg.kernel_priority, &cfg.kernel_max_queue})
    for (const auto& [name, value] : *m)
      if (!kernels.id_of(name))
        throw std::invalid_argument("receiver: per-kernel setting for '" + name + "', which is not one of its kernels");
  for (const auto& [name, value] : cfg.kernel_batching)
    if (!kernels.id_of(name))
      throw std::invalid_argument("receiver: per-kernel batching for '" + name + "', which is not one of its kernels");
  for (std::uint32_t id = 0; id < kernels.size(); ++id) {
    const auto name = kernels.by_id(id)->name();
    detail::queue_rules q;
    q.batching.max_batch = cfg.max_batch;
    q.batching.preferred = cfg.preferred_batch;
    q.batching.max_wait = cfg.max_wait;
    if (auto it = cfg.kernel_batching.find(std::string(name)); it != cfg.kernel_batching.end()) {
      q.batching.max_batch = it->second.max_batch;
      q.batching.max_batch_items = it->second.max_batch_items;
      q.batching.preferred = it->second.preferred;
      q.batching.max_wait = it->second.max_wait;
    }
    q.instances = per_kernel(cfg.kernel_instances, name, static_cast<std::uint32_t>(instances));
    q.max_queue = per_kernel(cfg.kernel_max_queue, name, cfg.max_queue);
    q.default_priority = per_kernel(cfg.kernel_priority, name, 1);
    if (q.instances == 0) throw std::invalid_argument("receiver: kernel '" + std::string(name) + "' has 0 instances");
    try {
      sched.add_queue(std::move(q));
    } catch (const std::invalid_argument& e) {
      throw std::invalid_argument(std::string("receiver: ") + e.what());
    }
  }
}

void receiver::impl::utilisation(long running_delta, long queued_delta, std::uint64_t items) {
  const auto now = steady::now();
  std::lock_guard lock(stats_mutex);
  const double dt = std::chrono::duration<double>(now - last_change).count();
  if (running > 0) st.busy_s += dt;
  st.queued_request_s += double(queued) * dt;
  last_change = now;
  running = std::size_t(long(running) + running_delta);
  queued = std::size_t(long(queued) + queued_delta);
  st.batch_items += items;
}

void receiver::impl::send_reply(detail::finished_job& r) {
  auto& p = peers.at(r.peer);  // (its entry stays while it is owed anything)
  --p.outstanding;
  if (p.dropped) {
    count([](receiver_stats& s) { s.replies_discarded += 1; });
    forget_if_done(r.peer);
    return;
  }
  const bool in_place = r.in_place;
  const auto bytes = r.reply.total_size;
  ep->send(r.peer, std::move(r.reply));
  if (!r.defect.empty()) warn_about(r.peer, "request from transmitter " + ep->describe(r.peer) + ": " + r.defect);
  const std::uint64_t sent = detail::now_ns();
  count([&](receiver_stats& s) {
    (r.is_error ? s.error_replies : s.replies) += 1;
    s.bad_outputs += r.defect.empty() ? 0 : 1;
    s.in_place_replies += in_place ? 1 : 0;
    s.bytes_out += bytes;
    if (r.k == nullptr) return;
    auto& c = counters_of(s, *r.k);
    c.request_ns += sent - r.received_ns;
    if (r.is_error) {
      c.failure += 1;
      return;
    }
    c.success += 1;
    c.inferences += r.items;
    c.executions += r.first_of_batch ? 1 : 0;
    c.queue_ns += r.taken_ns - r.received_ns;
    c.input_ns += r.start_ns - r.taken_ns;
    c.infer_ns += r.end_ns - r.start_ns;
    c.output_ns += sent - r.end_ns;
  });
  maybe_finish(r.peer, p);
  forget_if_done(r.peer);
}

bool receiver::impl::run_inline(detail::job& j, const kernel& k) {
  const double ns_per_byte = k.cheap_ns_per_byte();
  const auto queue = j.request.header().kernel_id;
  if (cfg.inline_budget.count() <= 0 || !(ns_per_byte > 0) || !be->on_cpu() || sched.waiting(queue) > 0) return false;
  auto& state = inline_states[&k];
  const auto wall0 = steady::now();
  if (wall0 < state.off_until) return false;
  double bytes = 0;
  for (const auto& p : j.request.products()) bytes += double(p.size_bytes());
  const double budget_ns = 1e3 * double(cfg.inline_budget.count());
  if (bytes * ns_per_byte > budget_ns) return false;
  const double limit_ns = std::max(10 * budget_ns, 1e6);
  detail::job_batch b{queue, &k, {}};
  b.items.push_back(std::move(j));
  const double cpu0 = thread_cpu_ns();  // (a system call; the clock below is not)
  auto out = exec->run(b);
  // This thread's CPU time never exceeds the wall time: it is read again only when it may be
  // over the limit.
  const double wall_ns = double(std::chrono::nanoseconds(steady::now() - wall0).count());
  const double took_ns = wall_ns > limit_ns ? thread_cpu_ns() - cpu0 : 0;
  count([](receiver_stats& s) {
    s.inline_runs += 1;
    s.batch_sizes[1] += 1;
  });
  if (took_ns > limit_ns) {
    state.off_until = steady::now() + state.backoff;
    count([](receiver_stats& s) { s.inline_demotions += 1; });
    offload::logger()->warn(
        "{}: kernel '{}' declares itself cheap ({} ns/byte) but one request of {:.0f} bytes took {:.1f} ms of CPU "
        "on the progress thread; it runs on its own threads for the next {} s",
        self, k.name(), ns_per_byte, bytes, 1e-6 * took_ns, state.backoff.count());
    state.backoff = std::min(2 * state.backoff, std::chrono::seconds(64));
  } else {
    state.backoff = std::chrono::seconds(1);
  }
  for (auto& f : out) send_reply(f);
  return true;
}

bool receiver::impl::dispatch() {
  if (sched.idle()) return false;
  const auto now = sched_now();
  bool any = false;
  for (const auto& r : sched.take_expired(now)) {
    auto it = waiting_jobs.find(r.ticket);
    detail::job j = std::move(it->second);
    waiting_jobs.erase(it);
    auto& p = peers.at(j.peer);
    --p.outstanding;
    utilisation(0, -1);
    const auto& h = j.request.header();
    const double late_ms = 1e-6 * double(now.count() - r.deadline.count());
    send_error(j.peer, h.request_id, status::expired,
               "kernel '" + std::string(kernels.by_id(h.kernel_id)->name()) + "': the request's deadline passed " +
                   fmt::format("{:.3f}", late_ms) + " ms before it could start; it was not run",
               j.received_ns, kernels.by_id(h.kernel_id));
    count([](receiver_stats& s) { s.expired += 1; });
    maybe_finish(j.peer, p);
    forget_if_done(j.peer);
    any = true;
  }
  while (auto next = sched.next(now)) {
    detail::job_batch b{next->queue, kernels.by_id(static_cast<std::uint32_t>(next->queue)), {}};
    b.items.reserve(next->tickets.size());
    for (auto t : next->tickets) {
      auto it = waiting_jobs.find(t);
      b.items.push_back(std::move(it->second));
      waiting_jobs.erase(it);
    }
    const auto n = b.items.size();
    utilisation(0, -long(n));  // (out of the queue)
    count([&](receiver_stats& s) {
      if (n >= s.batch_sizes.size()) s.batch_sizes.resize(n + 1, 0);
      s.batch_sizes[n] += 1;
    });
    exec->start(std::move(b));
    any = true;
  }
  return any;
}

bool receiver::impl::progress() {
  bool busy = ep->progress_sends();

  for (auto& f : exec->take_finished()) {
    busy = true;
    sched.finished(f.queue);
    for (auto& r : f.replies) send_reply(r);
  }
  busy = dispatch() || busy;  // a free executor takes the next batch before more is received

  for (int i = 0; i < 64; ++i) {
    auto in = ep->receive();
    if (!in) break;
    busy = true;
    handle(std::move(*in));
  }
  busy = dispatch() || busy;

  housekeeping();

  if (!done_signalled && expected_finished >= expected_peers) {
    bool idle = true;
    for (const auto& [rank, p] : peers) idle = idle && p.outstanding == 0;
    if (idle && ep->pending_sends() > 0) {
      // Replies still on their way to peers that are done: give them the idle timeout to be
      // taken (a peer that stopped receiving never takes them).
      const auto now = steady::now();
      if (sends_deadline == steady::time_point{})
        sends_deadline = now + (cfg.idle_timeout.count() > 0 ? cfg.idle_timeout : std::chrono::seconds(60));
      if (now >= sends_deadline) {
        std::size_t abandoned = 0;
        for (const auto& [rank, p] : peers) abandoned += ep->abandon(rank);
        offload::logger()->warn("{}: every peer is done but {} send(s) were not taken; giving them up", self,
                                abandoned);
        count([&](receiver_stats& s) { s.replies_discarded += abandoned; });
      }
    }
    if (idle && ep->pending_sends() == 0) {
      done_signalled = true;
      done.set_value();
    }
  }
  return busy;
}

steady::time_point receiver::impl::wake_by() const {
  auto t = ep->next_release();
  const auto s = sched.wake_by();
  if (s != detail::no_deadline) t = std::min(t, steady::time_point(std::chrono::duration_cast<steady::duration>(s)));
  return t;
}

void receiver::impl::send_error(int dest, std::uint64_t id, status s, const std::string& text,
                                std::uint64_t received_ns, const kernel* k) {
  auto bytes = encode_error(id, s, text, pool.acquire(wire_header_size + wire_entry_size + 64 + text.size()));
  write_times(bytes.span(), {received_ns, 0, 0});
  const auto n = bytes.size();
  ep->send(dest, std::move(bytes));
  const std::uint64_t sent = detail::now_ns();
  count([&](receiver_stats& x) {
    x.error_replies += 1;
    x.bytes_out += n;
    if (k == nullptr) return;
    auto& c = counters_of(x, *k);
    c.failure += 1;
    c.request_ns += received_ns > 0 && sent > received_ns ? sent - received_ns : 0;
  });
}

kernel_counters& receiver::impl::counters_of(receiver_stats& s, const kernel& k) {
  auto [it, added] = s.kernels.try_emplace(std::string(k.name()));
  if (added) it->second.version = std::string(k.version());
  return it->second;
}

void receiver::impl::handle(detail::incoming in) {
  if (in.closed) {
    handle_closed(in.source, in.closed_reason);
    return;
  }
  const std::uint64_t received_ns = detail::now_ns();
  count([&](receiver_stats& s) { s.bytes_in += in.size; });
  const std::uint64_t id = peek_request_id(in.bytes.span());
  if (in.oversized) {
    count([](receiver_stats& s) { s.malformed += 1; });
    trim_due = true;
    const auto text = "message of " + std::to_string(in.size) + " bytes exceeds the receiver's maximum of " +
                      std::to_string(cfg.limits.max_message_bytes);
    warn_about(in.source, "from " + ep->describe(in.source) + ": " + text);
    send_error(in.source, id, status::too_large, text);
    return;
  }
  if (!in.broken.empty()) {  // its parts did not fit its head (docs/protocol.md section 1)
    count([](receiver_stats& s) { s.malformed += 1; });
    warn_about(in.source, "malformed message from " + ep->describe(in.source) + ": " + in.broken);
    send_error(in.source, id, status::malformed, "malformed message: " + in.broken);
    return;
  }
  auto decoded = message::from(std::move(in.bytes), cfg.limits);
  if (!decoded) {
    count([](receiver_stats& s) { s.malformed += 1; });
    const auto& e = decoded.error();
    warn_about(in.source, "malformed message from " + ep->describe(in.source) + ": " + e.text + " (" +
                              std::string(to_string(e.code)) + ")");
    send_error(in.source, id, status::malformed,
               "malformed message: " + e.text + " (" + std::string(to_string(e.code)) + ")");
    return;
  }
  message m = std::move(decoded.value());
  if (auto it = peers.find(in.source); it != peers.end()) it->second.last_heard = steady::now();
  switch (m.header().kind) {
    case message_kind::hello: handle_hello(in.source, m); break;
    case message_kind::keepalive:
      if (auto it = peers.find(in.source); it == peers.end() || !it->second.hello || it->second.finished)
        send_error(in.source, id, status::no_handshake, "keepalive outside a session");
      break;
    case message_kind::request: handle_request(in.source, std::move(m), received_ns); return;
    case message_kind::goodbye: handle_goodbye(in.source, id); break;
    default:
      send_error(in.source, id, status::unexpected_kind,
                 "a receiver does not accept '" + std::string(to_string(m.header().kind)) + "' messages");
  }
}

void receiver::impl::handle_request(int source, message m, std::uint64_t received_ns) {
  const auto& h = m.header();
  auto& p = peers[source];
  const kernel* k = kernels.by_id(h.kernel_id);
  std::string problem;
  status s = status::ok;
  if (!p.hello || p.goodbye) {
    s = status::no_handshake;
    problem = p.goodbye   ? "request after goodbye"
              : p.dropped ? "request after this receiver dropped the session (silent for more than " +
                                std::to_string(cfg.idle_timeout.count()) + " ms)"
                          : "request before the hello handshake";
  } else if (draining) {
    s = status::busy;
    problem = "draining: this receiver is shutting down (try another receiver)";
  } else if (p.outstanding >= cfg.credits) {
    s = status::credit_exceeded;
    problem = "peer already has " + std::to_string(p.outstanding) + " requests outstanding, its credit is " +
              std::to_string(cfg.credits);
  } else if (k == nullptr) {
    s = status::unknown_kernel;
    problem = "kernel id " + std::to_string(h.kernel_id) + " is not one of the " + std::to_string(kernels.size()) +
              " kernels here";
  } else if (!p.offered[h.kernel_id]) {
    s = status::unknown_kernel;
    problem = "kernel '" + std::string(k->name()) + "' (id " + std::to_string(h.kernel_id) +
              ") was not in this transmitter's hello in this receiver's version";
  } else if (const double work = declared_work(*k, m.products()); cfg.max_work > 0 && work > cfg.max_work) {
    s = status::too_large;
    problem = "kernel '" + std::string(k->name()) + "': the request's declared work of " + fmt::format("{:.3g}", work) +
              " flops exceeds this receiver's maximum of " + fmt::format("{:.3g}", cfg.max_work) + " (max_work)";
  } else if (p.client) {
    std::tie(s, problem) = client_refusal(*p.client, *k, work);
  }
  if (s != status::ok) {
    if (s == status::busy) count([](receiver_stats& x) { x.busy += 1; });
    // (a request for a kernel this session may call counts against it, as Triton's failures do)
    const bool callable =
        k != nullptr && p.hello && !p.goodbye && h.kernel_id < p.offered.size() && p.offered[h.kernel_id];
    send_error(source, h.request_id, s, problem, received_ns, callable ? k : nullptr);
    return;
  }
  const std::uint64_t timeout_ns = h.times[request_timeout_ns];
  auto priority = static_cast<std::uint32_t>(std::min<std::uint64_t>(h.times[request_priority], UINT32_MAX));
  if (p.client && p.client->limits.max_priority > 0 && (priority == 0 || priority < p.client->limits.max_priority))
    priority = p.client->limits.max_priority;  // (1 is the highest: a client may not ask above its limit)
  detail::job j{source, std::move(m), received_ns};
  ++p.outstanding;  // (its reply, an expired answer or the end of its session takes it back)
  ++p.requests;     // (the session sent one, whatever its answer)
  if (run_inline(j, *k)) {
    count([](receiver_stats& x) { x.requests += 1; });
    return;
  }
  std::uint64_t items = 0;
  try {
    items = k->items(j.request.products());
  } catch (const std::exception&) {  // (the kernel refuses these inputs when it runs)
  }
  const auto now = sched_now();
  const detail::sched_time deadline =
      timeout_ns == 0 || timeout_ns > std::uint64_t(std::numeric_limits<std::int64_t>::max() - now.count())
          ? detail::no_deadline
          : now + detail::sched_time(timeout_ns);
  const auto ticket = next_ticket++;
  if (sched.push(j.request.header().kernel_id, {ticket, source, items, priority, deadline}, now) ==
      detail::scheduler::admission::busy) {
    --p.outstanding;  // (answered now)
    const auto& rules = sched.rules(j.request.header().kernel_id);
    count([](receiver_stats& x) { x.busy += 1; });
    send_error(source, j.request.header().request_id, status::busy,
               "kernel '" + std::string(k->name()) + "': its queue is full (" +
                   std::to_string(sched.waiting(j.request.header().kernel_id)) + " requests waiting, max_queue " +
                   std::to_string(rules.max_queue) + ")",
               received_ns, k);
    return;
  }
  count([](receiver_stats& x) { x.requests += 1; });
  utilisation(0, 1);
  waiting_jobs.emplace(ticket, std::move(j));
  dispatch();
}

std::pair<status, std::string> receiver::impl::client_refusal(const client_identity& who, const kernel& k,
                                                              double work) const {
  const auto& l = who.limits;
  if (l.max_work > 0 && work > l.max_work)
    return {status::too_large, "kernel '" + std::string(k.name()) + "': the request's declared work of " +
                                   fmt::format("{:.3g}", work) + " flops exceeds client '" + who.name +
                                   "''s maximum of " + fmt::format("{:.3g}", l.max_work) + " (max_work)"};
  if (l.max_inflight > 0) {
    std::uint64_t in_flight = 0;  // over every connection of this client
    for (const auto& [peer, q] : peers)
      if (q.client && q.client->name == who.name) in_flight += q.outstanding;
    if (in_flight >= l.max_inflight)
      return {status::busy, "client '" + who.name + "' has " + std::to_string(in_flight) +
                                " requests in flight, its limit (max_inflight) is " + std::to_string(l.max_inflight)};
  }
  return {status::ok, {}};
}

double receiver::impl::declared_work(const kernel& k, const product_views& in) {
  try {
    return k.cost(in).flops;
  } catch (const std::exception&) {
    return 0;  // inputs the kernel cannot cost are invalid: the kernel refuses them when it runs (bad_input)
  }
}

receiver::receiver(runtime& rt, const kernel_registry& kernels, const transport& link, std::size_t expected_peers,
                   receiver_config config)
    : m_impl(std::make_unique<impl>(rt, kernels, link, expected_peers, std::move(config))) {
  rt.attach(*m_impl);
}

int receiver::port() const noexcept {
  return m_impl->ep->port();
}

std::vector<int> receiver::ports() const {
  return m_impl->ep->ports();
}

receiver::~receiver() {
  m_impl->rt.detach(*m_impl);
  m_impl->exec.reset();  // joins its threads
}

receiver_stats receiver::wait() {
  m_impl->done_future.wait();
  return stats();
}

bool receiver::wait_for(std::chrono::milliseconds for_at_most) {
  return m_impl->done_future.wait_for(for_at_most) == std::future_status::ready;
}

host_pool_stats receiver::memory() const {
  return m_impl->pool.stats();
}

void receiver::drain() {
  auto& i = *m_impl;
  i.rt.call([&i] {
    if (i.draining) return;
    i.draining = true;
    i.ep->drain();
    offload::logger()->info("{}: draining: new connections refused, new requests answered busy", i.self);
  });
}

std::size_t receiver::in_flight() const {
  auto& i = *m_impl;
  return i.rt.call([&i] {
    std::size_t n = 0;
    for (const auto& [peer, p] : i.peers) n += p.outstanding;
    return n;
  });
}

std::vector<session_info> receiver::sessions() const {
  auto& i = *m_impl;
  return i.rt.call([&i] {
    std::vector<session_info> out;
    for (const auto& [peer, p] : i.peers)
      if (p.hello && !p.finished && !p.dropped)
        out.push_back({i.ep->describe(peer), p.client ? p.client->name : "", p.outstanding});
    return out;
  });
}

receiver_stats receiver::stats() const {
  m_impl->utilisation(0, 0);  // integrated up to now
  std::lock_guard lock(m_impl->stats_mutex);
  auto s = m_impl->st;
  s.unauthenticated = m_impl->ep->unauthenticated();  // (an atomic of the endpoint's)
  return s;
}

}  // namespace offload
