#include <offload/receiver.hpp>

#include "backend.hpp"
#include "src/runtime/fair_queue.hpp"
#include "src/session/handshake.hpp"
#include "src/transport/transport.hpp"
#include "src/wire/clock.hpp"

#include <spdlog/spdlog.h>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include <algorithm>
#include <atomic>
#include <deque>
#include <future>
#include <map>
#include <mutex>
#include <set>
#include <thread>

namespace offload {

using detail::buffer_pool;
using detail::endpoint;

struct receiver::impl final : progress_client {
  struct job {
    int peer;
    message request;
    std::uint64_t received_ns;
  };
  /// Requests for one kernel, run as one launch.
  struct batch {
    const kernel* k = nullptr;
    std::vector<job> items;
    std::chrono::steady_clock::time_point deadline;
  };
  struct finished_job {
    int peer;
    buffer reply;
    bool is_error;
    gathered_message gathered;  // instead of `reply`: outputs computed in the request's buffer
  };
  struct peer_state {
    bool hello = false;
    bool goodbye = false;
    bool finished = false;
    bool dropped = false;           // gone (silent past the idle timeout, or its stream ended): replies are discarded
    bool closed = false;            // (gRPC) its stream ended: the entry goes once nothing is owed to it
    std::uint32_t outstanding = 0;  // accepted requests queued or running
    std::uint64_t requests = 0;     // accepted in this session
    std::chrono::steady_clock::time_point last_heard;
  };

  impl(runtime& r, const kernel_registry& k, const transport& link, std::size_t expected, receiver_config c)
      : rt(r),
        kernels(k),
        expected_peers(expected),
        cfg(std::move(c)),
        ep(listen(link, r)),
        be(detail::make_backend(cfg.backend, cfg.device, r.local_rank(), backend_note, cfg.profile)) {
    if (!backend_note.empty()) spdlog::warn("{}: {}", self, backend_note);
    st.backend = be->name();
    st.backend_description = be->description();
    if (cfg.credits == 0) throw std::invalid_argument("receiver credits must be at least 1");
    if (cfg.threads == 0) throw std::invalid_argument("receiver threads must be at least 1");
    if (cfg.max_batch == 0) throw std::invalid_argument("receiver max_batch must be at least 1");
    if (!(cfg.site_link_bps >= 0)) throw std::invalid_argument("receiver site_link_bps must be zero or positive");
    for (auto b : cfg.preferred_batch)
      if (b == 0 || b > cfg.max_batch)
        throw std::invalid_argument("receiver preferred batch size " + std::to_string(b) +
                                    " is outside 1..max_batch (" + std::to_string(cfg.max_batch) + ")");
    std::sort(cfg.preferred_batch.begin(), cfg.preferred_batch.end());
    st.batch_sizes.assign(cfg.max_batch + 1, 0);
    const std::size_t threads = std::max(cfg.threads, be->concurrency());
    idle_workers = threads;
    last_change = std::chrono::steady_clock::now();
    for (std::size_t i = 0; i < threads; ++i) workers.emplace_back([this] { work(); });
  }

  runtime& rt;
  std::string backend_note;  // initialised before `be`, which may fill it
  kernel_registry kernels;
  std::size_t expected_peers;
  receiver_config cfg;
  std::shared_ptr<buffer_pool> pool_ptr = std::make_shared<buffer_pool>();
  buffer_pool& pool = *pool_ptr;
  std::string self;  // "receiver rank 3", "receiver at 0.0.0.0:7000": how its messages start (set by listen)
  std::unique_ptr<endpoint> ep;
  std::unique_ptr<detail::backend> be;

  // Kernel execution: batches in, each peer's in its own queue, served round robin (a batch
  // belongs to the peer whose request opened it); finished replies out.
  detail::fair_queue<batch> jobs;
  std::vector<std::thread> workers;
  std::atomic<std::size_t> idle_workers{0};  // kernel threads not running a batch
  std::mutex finished_mutex;
  std::vector<finished_job> finished_jobs;

  // Warnings about one peer's bad input: the first few are logged, the rest counted and
  // reported every `warning_period`, so that a peer sending junk in a loop cannot flood the log.
  static constexpr std::uint32_t first_warnings = 5;
  static constexpr std::chrono::seconds warning_period{10};
  struct warning_count {
    std::uint32_t logged = 0;
    std::uint64_t held = 0;  // not logged since the last report
    std::string last;        // the last one not logged
    std::chrono::steady_clock::time_point next_report;
  };
  std::map<int, warning_count> warnings;  // by peer, while it has had any

  // Progress-thread state.
  std::map<int, peer_state> peers;
  // The emulated site link: messages on it, in order, with the time each is through.
  std::deque<std::pair<std::chrono::steady_clock::time_point, detail::incoming>> site_queue;
  std::chrono::steady_clock::time_point site_free;
  std::map<std::uint32_t, batch> open_batches;  // by kernel id, while they fill
  std::size_t peers_finished = 0;
  std::chrono::steady_clock::time_point next_housekeeping;
  // Memory freed in bulk (an oversized message, a closed stream's buffers) goes back to the
  // system at the next housekeeping at most twice a second, not when the allocator likes.
  bool trim_due = false;
  std::chrono::steady_clock::time_point last_trim;
  std::chrono::steady_clock::time_point sends_deadline;  // set once every peer is done
  bool done_signalled = false;
  std::promise<void> done;
  std::shared_future<void> done_future = done.get_future().share();

  mutable std::mutex stats_mutex;
  receiver_stats st;
  // Utilisation (under stats_mutex): batches running and requests queued since `last_change`.
  std::size_t running = 0;
  std::size_t queued = 0;
  std::chrono::steady_clock::time_point last_change;

  /// Opens the transport's endpoint and takes the name it gives this receiver.
  std::unique_ptr<endpoint> listen(const transport& link, runtime& r) {
    // Per peer: its replies (at most `credits`), error replies and control messages.
    const std::size_t max_queued = 2 * std::size_t(cfg.credits) + 64;
    auto opened = link.impl().listen(r, {pool, cfg.limits.max_message_bytes, cfg.emulate, max_queued});
    self = std::move(opened.name);
    return std::move(opened.ep);
  }
  void work();
  /// Runs a batch on the calling thread and returns its replies.
  std::vector<finished_job> run_batch(batch& b);
  /// Sends a reply (progress thread), or drops it when its peer is gone.
  void send_reply(finished_job& r);
  /// Runs the request inline on the progress thread when its kernel is cheap enough
  /// (receiver_config::inline_budget); false when it must be queued.
  bool run_inline(job& j);
  std::set<const kernel*> demoted;  // kernels moved off the progress thread
  /// Sends the open batch of `kernel_id` to the kernel threads: all of it, or its first `n` requests.
  void flush(std::uint32_t kernel_id, std::size_t n = 0);
  /// Flushes the open batches that are due (see receiver_config::max_batch); true when any was.
  bool flush_due();
  /// Adds `running_delta` batches running and `queued_delta` requests queued, integrating both over time.
  void utilisation(long running_delta, long queued_delta, std::uint64_t items = 0);
  bool progress() override;
  std::chrono::steady_clock::time_point wake_by() const override {
    const auto send = ep->next_release();
    return site_queue.empty() ? send : std::min(send, site_queue.front().first);
  }
  /// Messages that crossed the emulated site link (receiver_config::site_link_bps) and are due.
  bool release_site_link();
  void handle(detail::incoming in);
  void handle_hello(int source, const message& m);
  void handle_request(int source, message m, std::uint64_t received_ns);
  void send_error(int dest, std::uint64_t id, status s, const std::string& text);
  void maybe_finish(int source, peer_state& p);
  static double declared_work(const kernel& k, const product_views& in);
  /// Every 100 ms at most: reports held warnings that are due, drops peers silent past the idle timeout.
  void housekeeping();
  void drop_peer(int peer, peer_state& p, const std::string& why, bool closed = false);
  void finish_peer(peer_state& p, bool served);
  std::size_t drop_queued_work(int peer, peer_state& p);
  void forget_if_done(int peer);
  /// Everything kept about `peer`, whose connection has ended, goes (held warnings are reported).
  void forget(int peer);
  void warn_about(int peer, const std::string& text);
  void report_held_warnings(int peer, warning_count& w);
  detail::session_terms terms() const {
    return {cfg.limits, cfg.credits, static_cast<std::uint64_t>(cfg.idle_timeout.count())};
  }
  template <class F> void count(F&& f) {
    std::lock_guard lock(stats_mutex);
    f(st);
  }
};

void receiver::impl::work() {
  while (auto next = jobs.pop()) {
    --idle_workers;
    auto out = run_batch(*next);
    {
      std::lock_guard lock(finished_mutex);
      for (auto& f : out) finished_jobs.push_back(std::move(f));
    }
    ++idle_workers;
    rt.wake();  // replies to send; a free thread may take an open batch
  }
}

namespace {
/// Where each output of a request lies when the kernel computes it over an input
/// (kernel::in_place): the input's bytes in the request's buffer; null for the others.
/// Throws std::logic_error for pairs that do not fit (a kernel bug).
std::vector<std::byte*> placed_outputs(const kernel& k, message& request, const std::vector<product_spec>& specs) {
  const auto pairs = k.in_place(request.products());
  if (pairs.empty()) return {};
  std::vector<std::byte*> placed(specs.size(), nullptr);
  std::vector<bool> input_used(request.products().size(), false);
  for (const auto& [o, i] : pairs) {
    if (o >= specs.size() || i >= input_used.size() || placed[o] != nullptr || input_used[i] ||
        specs[o].size_bytes() != request.products()[i].size_bytes())
      throw std::logic_error("kernel '" + std::string(k.name()) + "': in_place pair (output " + std::to_string(o) +
                             ", input " + std::to_string(i) + ") is out of range, repeated or of another size");
    input_used[i] = true;
    placed[o] = request.writable_payload(i).data();
  }
  return placed;
}
}  // namespace

void receiver::impl::utilisation(long running_delta, long queued_delta, std::uint64_t items) {
  const auto now = std::chrono::steady_clock::now();
  std::lock_guard lock(stats_mutex);
  const double dt = std::chrono::duration<double>(now - last_change).count();
  if (running > 0) st.busy_s += dt;
  st.queued_request_s += double(queued) * dt;
  last_change = now;
  running = std::size_t(long(running) + running_delta);
  queued = std::size_t(long(queued) + queued_delta);
  st.batch_items += items;
}

std::vector<receiver::impl::finished_job> receiver::impl::run_batch(batch& b) {
  const kernel& k = *b.k;
  utilisation(0, -long(b.items.size()));
  std::vector<finished_job> out;
  std::vector<const product_views*> ins;
  std::vector<message_writer> writers;
  std::vector<int> peers_of;
  std::vector<std::uint64_t> ids;
  std::vector<std::uint64_t> received;
  std::vector<job*> jobs_of;
  writers.reserve(b.items.size());
  for (auto& j : b.items) {
    const auto& h = j.request.header();
    try {
      auto specs = k.output_specs(j.request.products());
      auto placed = placed_outputs(k, j.request, specs);
      // Storage for what is not placed over an input: the head alone when everything is.
      const std::uint64_t storage = message_writer::storage_for(specs, placed);
      writers.emplace_back(message_info{message_kind::reply, h.request_id, h.kernel_id, status::ok}, specs,
                           pool.acquire(static_cast<std::size_t>(storage)), std::move(placed));
      ins.push_back(&j.request.products());
      peers_of.push_back(j.peer);
      ids.push_back(h.request_id);
      received.push_back(j.received_ns);
      jobs_of.push_back(&j);
    } catch (const std::exception& e) {
      const bool input = dynamic_cast<const input_error*>(&e) != nullptr;
      out.push_back({j.peer,
                     encode_error(h.request_id, input ? status::bad_input : status::kernel_failed,
                                  "kernel '" + std::string(k.name()) + "': " + e.what()),
                     true,
                     {}});
      write_times(out.back().reply.span(), {j.received_ns, 0, 0});
    }
  }
  if (!ins.empty()) {
    std::vector<message_writer*> outs;
    for (auto& w : writers) outs.push_back(&w);
    std::uint64_t items = 0;
    for (const auto* in : ins) {
      try {
        items += k.items(*in);
      } catch (const std::exception&) {  // (the kernel refuses these inputs below)
      }
    }
    utilisation(1, 0, items);
    const std::uint64_t start = detail::now_ns();
    try {
      be->run(k, ins, outs);
      const std::uint64_t end = detail::now_ns();
      for (std::size_t i = 0; i < writers.size(); ++i) {
        if (!writers[i].gathered()) {
          out.push_back({peers_of[i], std::move(writers[i]).finish(), false, {}});
          write_times(out.back().reply.span(), {received[i], start, end});
          continue;
        }
        // Sent from the request's buffer, which the reply keeps alive until it is out.
        auto g = std::move(writers[i]).finish_gathered();
        g.keep_alive = std::make_shared<message>(std::move(jobs_of[i]->request));
        write_times(g.storage.span(), {received[i], start, end});
        out.push_back({peers_of[i], {}, false, std::move(g)});
      }
    } catch (const std::exception& e) {
      const std::string text =
          "kernel '" + std::string(k.name()) + "' failed on backend " + std::string(be->name()) + ": " + e.what();
      for (std::size_t i = 0; i < ins.size(); ++i) {
        out.push_back({peers_of[i], encode_error(ids[i], status::kernel_failed, text), true, {}});
        write_times(out.back().reply.span(), {received[i], start, detail::now_ns()});
      }
    }
    utilisation(-1, 0);
    count([&](receiver_stats& s) { s.batch_sizes[ins.size()] += 1; });
  }
  return out;
}

void receiver::impl::send_reply(finished_job& r) {
  auto& p = peers.at(r.peer);  // (its entry stays while it is owed anything)
  --p.outstanding;
  if (p.dropped) {
    count([](receiver_stats& s) { s.replies_discarded += 1; });
    forget_if_done(r.peer);
    return;
  }
  const bool in_place = r.gathered.total_size > 0;
  const auto bytes = in_place ? r.gathered.total_size : r.reply.size();
  if (in_place)
    ep->send(r.peer, std::move(r.gathered));
  else
    ep->send(r.peer, std::move(r.reply));
  count([&](receiver_stats& s) {
    (r.is_error ? s.error_replies : s.replies) += 1;
    s.in_place_replies += in_place ? 1 : 0;
    s.bytes_out += bytes;
  });
  maybe_finish(r.peer, p);
  forget_if_done(r.peer);
}

bool receiver::impl::run_inline(job& j) {
  const kernel& k = *kernels.by_id(j.request.header().kernel_id);
  const double ns_per_byte = k.cheap_ns_per_byte();
  if (cfg.inline_budget.count() <= 0 || !(ns_per_byte > 0) || be->name() != "cpu" || demoted.contains(&k) ||
      open_batches.contains(j.request.header().kernel_id))
    return false;
  double bytes = 0;
  for (const auto& p : j.request.products()) bytes += double(p.size_bytes());
  const double budget_ns = 1e3 * double(cfg.inline_budget.count());
  if (bytes * ns_per_byte > budget_ns) return false;
  batch b{&k, {}, {}};
  b.items.push_back(std::move(j));
  const auto t0 = std::chrono::steady_clock::now();
  auto out = run_batch(b);
  const double took_ns = std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count();
  count([](receiver_stats& s) { s.inline_runs += 1; });
  if (took_ns > std::max(10 * budget_ns, 1e6)) {
    demoted.insert(&k);
    count([](receiver_stats& s) { s.inline_demotions += 1; });
    spdlog::warn(
        "{}: kernel '{}' declares itself cheap ({} ns/byte) but one request of {:.0f} bytes took {:.1f} ms "
        "on the progress thread; it runs on the kernel threads from now on",
        self, k.name(), ns_per_byte, bytes, 1e-6 * took_ns);
  }
  for (auto& f : out) send_reply(f);
  return true;
}

void receiver::impl::flush(std::uint32_t kernel_id, std::size_t n) {
  auto it = open_batches.find(kernel_id);
  if (it == open_batches.end() || it->second.items.empty()) return;
  auto& open = it->second;
  const int owner = open.items.front().peer;
  if (n == 0 || n >= open.items.size()) {
    jobs.push(owner, std::move(open));
    open_batches.erase(it);
    return;
  }
  batch first{open.k, {}, open.deadline};  // the rest keep their deadline: they are as old
  first.items.assign(std::make_move_iterator(open.items.begin()),
                     std::make_move_iterator(open.items.begin() + long(n)));
  open.items.erase(open.items.begin(), open.items.begin() + long(n));
  jobs.push(owner, std::move(first));
}

bool receiver::impl::flush_due() {
  if (open_batches.empty()) return false;
  const auto now = std::chrono::steady_clock::now();
  std::size_t free = idle_workers.load();
  free = free > jobs.size() ? free - jobs.size() : 0;
  if (free == 0) return false;
  // The batches that may go, oldest first (kernels share the threads first come, first served).
  struct candidate {
    std::chrono::steady_clock::time_point deadline;
    std::uint32_t id;
    std::size_t n;
  };
  std::vector<candidate> due;
  for (const auto& [id, b] : open_batches) {
    std::size_t n = 0;  // the largest preferred size that can be formed
    for (auto p : cfg.preferred_batch)
      if (p <= b.items.size()) n = p;
    if (n == 0 && b.deadline > now) continue;
    due.push_back({b.deadline, id, n});
  }
  std::sort(due.begin(), due.end(), [](const candidate& a, const candidate& b) { return a.deadline < b.deadline; });
  if (due.size() > free) due.resize(free);
  for (const auto& c : due) flush(c.id, c.n);
  return !due.empty();
}

bool receiver::impl::progress() {
  bool busy = ep->progress_sends();

  std::vector<finished_job> replies;
  {
    std::lock_guard lock(finished_mutex);
    replies.swap(finished_jobs);
  }
  for (auto& r : replies) {
    busy = true;
    send_reply(r);
  }
  busy = flush_due() || busy;  // a thread that just finished takes the next batch before more is received

  for (int i = 0; i < 64; ++i) {
    auto in = ep->receive();
    if (!in) break;
    busy = true;
    if (cfg.site_link_bps <= 0) {
      handle(std::move(*in));
      if (idle_workers.load() > jobs.size()) flush_due();  // a free thread waits for no sweep
      continue;
    }
    const auto now = std::chrono::steady_clock::now();
    const auto wire = std::chrono::duration_cast<std::chrono::steady_clock::duration>(
        std::chrono::duration<double>(8.0 * double(in->size) / cfg.site_link_bps));
    site_free = std::max(site_free, now) + wire;
    site_queue.emplace_back(site_free, std::move(*in));
  }
  busy = release_site_link() || busy;

  busy = flush_due() || busy;

  housekeeping();

  if (!done_signalled && peers_finished >= expected_peers) {
    bool idle = true;
    for (const auto& [rank, p] : peers) idle = idle && p.outstanding == 0;
    if (idle && ep->pending_sends() > 0) {
      // Replies still on their way to peers that are done: give them the idle timeout to be
      // taken (a peer that stopped receiving never takes them).
      const auto now = std::chrono::steady_clock::now();
      if (sends_deadline == std::chrono::steady_clock::time_point{})
        sends_deadline = now + (cfg.idle_timeout.count() > 0 ? cfg.idle_timeout : std::chrono::seconds(60));
      if (now >= sends_deadline) {
        std::size_t abandoned = 0;
        for (const auto& [rank, p] : peers) abandoned += ep->abandon(rank);
        spdlog::warn("{}: every peer is done but {} send(s) were not taken; giving them up", self, abandoned);
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

bool receiver::impl::release_site_link() {
  bool any = false;
  const auto now = std::chrono::steady_clock::now();
  while (!site_queue.empty() && site_queue.front().first <= now) {
    auto in = std::move(site_queue.front().second);
    site_queue.pop_front();
    handle(std::move(in));
    any = true;
  }
  return any;
}

void receiver::impl::send_error(int dest, std::uint64_t id, status s, const std::string& text) {
  auto bytes = encode_error(id, s, text, pool.acquire(wire_header_size + wire_entry_size + 64 + text.size()));
  const auto n = bytes.size();
  ep->send(dest, std::move(bytes));
  count([&](receiver_stats& x) {
    x.error_replies += 1;
    x.bytes_out += n;
  });
}

void receiver::impl::handle(detail::incoming in) {
  if (in.closed) {  // (gRPC) its stream ended: a peer still in session is gone, and never comes back
    trim_due = true;
    auto it = peers.find(in.source);
    if (it == peers.end()) {  // it never said hello nor sent a request
      forget(in.source);
      return;
    }
    auto& p = it->second;
    p.closed = true;
    if (p.hello && !p.finished) drop_peer(in.source, p, "closed its connection (" + in.closed_reason + ")", true);
    drop_queued_work(in.source, p);  // (a peer that said goodbye has none queued any more)
    forget_if_done(in.source);
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
  if (auto it = peers.find(in.source); it != peers.end()) it->second.last_heard = std::chrono::steady_clock::now();
  switch (m.header().kind) {
    case message_kind::hello: handle_hello(in.source, m); break;
    case message_kind::keepalive:
      if (auto it = peers.find(in.source); it == peers.end() || !it->second.hello || it->second.finished)
        send_error(in.source, id, status::no_handshake, "keepalive outside a session");
      break;
    case message_kind::request: handle_request(in.source, std::move(m), received_ns); return;
    case message_kind::goodbye: {
      auto& p = peers[in.source];
      if (!p.hello || p.goodbye) {
        send_error(in.source, id, status::no_handshake,
                   p.dropped ? "goodbye after this receiver dropped the session" : "goodbye without a hello before it");
        break;
      }
      p.goodbye = true;
      // It waits for nothing more: requests still queued were given up (timed out) on its side.
      drop_queued_work(in.source, p);
      maybe_finish(in.source, p);
      break;
    }
    default:
      send_error(in.source, id, status::unexpected_kind,
                 "a receiver does not accept '" + std::string(to_string(m.header().kind)) + "' messages");
  }
}

void receiver::impl::handle_hello(int source, const message& m) {
  auto& p = peers[source];
  if (p.hello && !p.finished) {
    send_error(source, m.header().request_id, status::unexpected_kind, "second hello in the same session");
    return;
  }
  const auto hello = detail::parse_hello(m);
  if (!hello.ok()) {
    count([](receiver_stats& s) { s.malformed += 1; });
    warn_about(source, "bad hello from " + ep->describe(source) + ": " + hello.error);
    send_error(source, m.header().request_id, status::malformed, "bad hello: " + hello.error);
    return;
  }
  const auto owed = p.outstanding;  // requests of a dropped session still running
  p = peer_state{};                 // a rank that said goodbye (or was dropped) may start a new session
  p.outstanding = owed;
  p.last_heard = std::chrono::steady_clock::now();
  const std::string& theirs = hello.signature;
  const std::string ours = kernels.signature();
  const bool match = theirs == ours;
  const auto t = terms();
  ep->send(source, detail::make_hello_ack(m, match, ours, rt.host(), t, detail::now_ns()));
  if (match) {
    p.hello = true;
    return;
  }
  const auto them = "transmitter " + ep->describe(source);
  warn_about(source, "kernel set mismatch with " + them + ": " +
                         detail::kernel_set_difference(ours, theirs, "this receiver", them));
  count([](receiver_stats& s) { s.handshake_failures += 1; });
  finish_peer(p, false);
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
  } else if (p.outstanding >= cfg.credits) {
    s = status::credit_exceeded;
    problem = "peer already has " + std::to_string(p.outstanding) + " requests outstanding, its credit is " +
              std::to_string(cfg.credits);
  } else if (k == nullptr) {
    s = status::unknown_kernel;
    problem = "kernel id " + std::to_string(h.kernel_id) + " is not one of the " + std::to_string(kernels.size()) +
              " kernels here";
  } else if (const double work = declared_work(*k, m.products()); cfg.max_work > 0 && work > cfg.max_work) {
    s = status::too_large;
    problem = "kernel '" + std::string(k->name()) + "': the request's declared work of " + fmt::format("{:.3g}", work) +
              " flops exceeds this receiver's maximum of " + fmt::format("{:.3g}", cfg.max_work) + " (max_work)";
  }
  if (s != status::ok) {
    send_error(source, h.request_id, s, problem);
    return;
  }
  ++p.outstanding;
  ++p.requests;
  count([](receiver_stats& x) { x.requests += 1; });
  utilisation(0, 1);
  job j{source, std::move(m), received_ns};
  if (run_inline(j)) return;
  const auto kernel_id = j.request.header().kernel_id;
  auto& b = open_batches[kernel_id];
  if (b.items.empty()) {
    b.k = k;
    b.deadline = std::chrono::steady_clock::now() + cfg.max_wait;
  }
  b.items.push_back(std::move(j));
  if (b.items.size() >= cfg.max_batch) flush(kernel_id);
}

double receiver::impl::declared_work(const kernel& k, const product_views& in) {
  try {
    return k.cost(in).flops;
  } catch (const std::exception&) {
    return 0;  // inputs the kernel cannot cost are invalid: the kernel thread refuses them (bad_input)
  }
}

void receiver::impl::maybe_finish(int source, peer_state& p) {
  if (!p.goodbye || p.finished || p.outstanding != 0) return;
  ep->send(source, detail::make_goodbye_ack());
  finish_peer(p, true);
}

void receiver::impl::finish_peer(peer_state& p, bool served) {
  p.finished = true;
  // A job's own receivers count every peer once, whatever the outcome (a transmitter turned
  // away does not try again); a shared service counts the sessions it served, so that a client
  // that fails the handshake or leaves at once does not use up its expected sessions.
  if (!served && !cfg.count_every_peer) return;
  ++peers_finished;
  count([&](receiver_stats& s) { s.peers_finished = peers_finished; });
}

void receiver::impl::housekeeping() {
  const auto now = std::chrono::steady_clock::now();
  if (now < next_housekeeping) return;
  next_housekeeping = now + std::chrono::milliseconds(100);
  if (cfg.idle_timeout.count() > 0) next_housekeeping = std::min(next_housekeeping, now + cfg.idle_timeout / 10);
  for (auto& [peer, w] : warnings)
    if (w.held > 0 && now >= w.next_report) report_held_warnings(peer, w);
  if (trim_due && now - last_trim >= std::chrono::milliseconds(500)) {
#if defined(__GLIBC__)
    malloc_trim(0);  // free pages inside the heap too, not only its top
#endif
    trim_due = false;
    last_trim = now;
  }
  if (cfg.idle_timeout.count() <= 0) return;
  for (auto& [peer, p] : peers) {
    // (A peer that said goodbye is waiting for us, not gone: its last replies are still owed.)
    if (!p.hello || p.goodbye || p.finished || now - p.last_heard < cfg.idle_timeout) continue;
    drop_peer(peer, p, "sent nothing for " + std::to_string(cfg.idle_timeout.count()) + " ms");
  }
}

void receiver::impl::drop_peer(int peer, peer_state& p, const std::string& why, bool closed) {
  const auto abandoned = ep->abandon(peer);
  // A client that closes its connection is a service's daily life (info); one that falls
  // silent without closing it is not (warning).
  spdlog::log(closed ? spdlog::level::info : spdlog::level::warn,
              "{}: transmitter {} {}: dropping it, reclaiming its {} credit(s) in use, giving up {} repl(ies) it "
              "has not taken and discarding any still being computed",
              self, ep->describe(peer), why, p.outstanding, abandoned);
  p.hello = false;
  p.dropped = true;
  count([&](receiver_stats& s) {
    s.peers_dropped += 1;
    s.replies_discarded += abandoned;
  });
  drop_queued_work(peer, p);
  finish_peer(p, p.requests > 0);
}

std::size_t receiver::impl::drop_queued_work(int peer, peer_state& p) {
  std::size_t dropped = 0;
  auto keep = [&](batch& b) {
    dropped += std::erase_if(b.items, [&](const job& j) { return j.peer == peer; });
    return !b.items.empty();
  };
  jobs.filter(keep);
  for (auto it = open_batches.begin(); it != open_batches.end();)
    it = keep(it->second) ? std::next(it) : open_batches.erase(it);
  if (dropped == 0) return 0;
  p.outstanding -= static_cast<std::uint32_t>(dropped);
  utilisation(0, -long(dropped));
  count([&](receiver_stats& s) { s.work_dropped += dropped; });
  spdlog::info("{}: dropped {} queued request(s) of transmitter {}, which no longer waits for them", self, dropped,
               ep->describe(peer));
  return dropped;
}

void receiver::impl::forget_if_done(int peer) {
  // Over gRPC every session is a new peer: what is kept about one goes when its stream has
  // ended and nothing is owed to it, so that a service's memory does not grow with sessions.
  auto it = peers.find(peer);
  if (it == peers.end() || !it->second.closed || it->second.outstanding != 0) return;
  forget(peer);
}

void receiver::impl::forget(int peer) {
  peers.erase(peer);
  if (auto w = warnings.find(peer); w != warnings.end()) {
    report_held_warnings(peer, w->second);
    warnings.erase(w);
  }
  ep->forget(peer);
}

void receiver::impl::warn_about(int peer, const std::string& text) {
  auto& w = warnings[peer];
  if (w.logged < first_warnings) {
    ++w.logged;
    spdlog::warn("{}: {}", self, text);
    if (w.logged == first_warnings) {
      spdlog::warn("{}: {} warnings about {}: further ones are counted and reported every {} s", self, first_warnings,
                   ep->describe(peer), warning_period.count());
      w.next_report = std::chrono::steady_clock::now() + warning_period;
    }
    return;
  }
  ++w.held;
  w.last = text;
  if (std::chrono::steady_clock::now() >= w.next_report) report_held_warnings(peer, w);
}

void receiver::impl::report_held_warnings(int peer, warning_count& w) {
  if (w.held == 0) return;
  spdlog::warn("{}: {} more warning(s) about {} (not logged one by one); the last: {}", self, w.held,
               ep->describe(peer), w.last);
  w.held = 0;
  w.next_report = std::chrono::steady_clock::now() + warning_period;
}

receiver::receiver(runtime& rt, const kernel_registry& kernels, const transport& link, std::size_t expected_peers,
                   receiver_config config)
    : m_impl(std::make_unique<impl>(rt, kernels, link, expected_peers, std::move(config))) {
  rt.attach(*m_impl);
}

int receiver::port() const noexcept {
  return m_impl->ep->port();
}

receiver::~receiver() {
  m_impl->rt.detach(*m_impl);
  m_impl->jobs.close();
  for (auto& t : m_impl->workers) t.join();
}

receiver_stats receiver::wait() {
  m_impl->done_future.wait();
  return stats();
}

bool receiver::wait_for(std::chrono::milliseconds for_at_most) {
  return m_impl->done_future.wait_for(for_at_most) == std::future_status::ready;
}

receiver_stats receiver::stats() const {
  m_impl->utilisation(0, 0);  // integrated up to now
  std::lock_guard lock(m_impl->stats_mutex);
  return m_impl->st;
}

}  // namespace offload
