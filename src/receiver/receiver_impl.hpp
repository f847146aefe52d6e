#pragma once
// The receiver's state, shared by its units:
//   receiver.cpp  the progress loop: messages in, requests to the scheduler, batches to the
//                 executors, replies out; statistics
//   sessions.cpp  per-peer sessions: hello, credits, keepalive, goodbye, the idle drop, the
//                 end of a peer, rate-limited warnings
//   executor.*    running batches on the backend (threads, replies)
//   src/scheduler what runs next (every batching rule)

#include "backend.hpp"
#include "executor.hpp"
#include "src/scheduler/scheduler.hpp"
#include "src/session/handshake.hpp"
#include "src/transport/transport.hpp"

#include <offload/receiver.hpp>

#include <atomic>
#include <chrono>
#include <deque>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

namespace offload {

using detail::endpoint;
using steady = std::chrono::steady_clock;

struct receiver::impl final : progress_client {
  struct peer_state {
    bool hello = false;
    bool goodbye = false;
    bool finished = false;
    bool dropped = false;           // gone (silent past the idle timeout, or its stream ended): replies are discarded
    bool closed = false;            // (gRPC) its stream ended: the entry goes once nothing is owed to it
    std::uint32_t outstanding = 0;  // accepted requests waiting, running, or with a reply not yet sent
    std::uint64_t requests = 0;     // accepted in this session
    std::vector<bool> offered;      // by our kernel id: in its hello, in our version (it may call it)
    std::optional<client_identity> client;  // whose token opened the connection (a service with tokens)
    steady::time_point last_heard;
  };
  // Warnings about one peer's bad input: the first few are logged, the rest counted and
  // reported every `warning_period`, so that a peer sending junk in a loop cannot flood the log.
  static constexpr std::uint32_t first_warnings = 5;
  static constexpr std::chrono::seconds warning_period{10};
  struct warning_count {
    std::uint32_t logged = 0;
    std::uint64_t held = 0;  // not logged since the last report
    std::string last;        // the last one not logged
    steady::time_point next_report;
  };
  // A cheap kernel's inline runs (receiver_config::inline_budget).
  struct inline_state {
    steady::time_point off_until;  // runs on its own threads until then
    std::chrono::seconds backoff{1};
  };

  impl(runtime& r, const kernel_registry& k, const transport& link, std::size_t expected, receiver_config c);

  runtime& rt;
  std::string backend_note;  // initialised before `be`, which may fill it
  kernel_registry kernels;
  std::size_t expected_peers;
  receiver_config cfg;
  std::shared_ptr<host_pool> pool_ptr;  // made from receiver_config::memory in the constructor
  host_pool& pool = *pool_ptr;
  bool draining = false;  // receiver::drain() was called
  std::string self;       // "receiver rank 3", "receiver at 0.0.0.0:7000": how its messages start (set by listen)
  std::unique_ptr<endpoint> ep;
  std::shared_ptr<backend> be;
  // Batches of one kernel that may run at once: max(threads, the backend's concurrency).
  std::size_t instances = 0;

  // What runs next: one queue per kernel (its id), the requests waiting by ticket.
  detail::scheduler sched;
  std::unordered_map<std::uint64_t, detail::job> waiting_jobs;
  std::uint64_t next_ticket = 1;
  std::map<const kernel*, inline_state> inline_states;

  // Progress-thread state.
  std::map<int, peer_state> peers;
  std::map<int, warning_count> warnings;  // by peer, while it has had any
  std::size_t peers_finished = 0;
  std::size_t expected_finished = 0;  // of them, peers the receiver waits for (endpoint::expected)
  steady::time_point next_housekeeping;
  // Memory freed in bulk (an oversized message, a closed stream's buffers) goes back to the
  // system at the next housekeeping at most twice a second, not when the allocator likes.
  bool trim_due = false;
  steady::time_point last_trim;
  steady::time_point sends_deadline;  // set once every peer is done
  bool done_signalled = false;
  std::promise<void> done;
  std::shared_future<void> done_future = done.get_future().share();

  mutable std::mutex stats_mutex;
  receiver_stats st;
  // Utilisation (under stats_mutex): batches running and requests queued since `last_change`.
  std::size_t running = 0;
  std::size_t queued = 0;
  steady::time_point last_change;

  // Last: its threads use the members above, so it is destroyed first.
  std::unique_ptr<detail::executors> exec;

  /// Opens the transport's endpoint and takes the name it gives this receiver.
  std::unique_ptr<endpoint> listen(const transport& link, runtime& r);
  /// One scheduler queue per kernel, with the configuration's rules for it.
  void add_queues();

  // receiver.cpp
  bool progress() override;
  steady::time_point wake_by() const override;
  void handle(detail::incoming in);
  void handle_request(int source, message m, std::uint64_t received_ns);
  /// Answers expired requests and starts every batch the scheduler lets start; true when any.
  bool dispatch();
  /// Runs the request on the progress thread when its kernel is cheap enough
  /// (receiver_config::inline_budget); false when it must be queued.
  bool run_inline(detail::job& j, const kernel& k);
  /// Sends a reply (progress thread), or drops it when its peer is gone.
  void send_reply(detail::finished_job& r);
  /// An error answer; `k`: the kernel whose failures it counts (receiver_stats::kernels), if any.
  void send_error(int dest, std::uint64_t id, status s, const std::string& text, std::uint64_t received_ns = 0,
                  const kernel* k = nullptr);
  static kernel_counters& counters_of(receiver_stats& s, const kernel& k);
  /// Adds `running_delta` batches running and `queued_delta` requests queued, integrating both over time.
  void utilisation(long running_delta, long queued_delta, std::uint64_t items = 0);
  static double declared_work(const kernel& k, const product_views& in);
  /// Why a request of `who` (a service's token client) is refused by its limits: ok when it is not.
  std::pair<status, std::string> client_refusal(const client_identity& who, const kernel& k, double work) const;
  template <class F> void count(F&& f) {
    std::lock_guard lock(stats_mutex);
    f(st);
  }

  // sessions.cpp
  void handle_hello(int source, const message& m);
  void handle_goodbye(int source, std::uint64_t id);
  /// The peer's stream ended (gRPC).
  void handle_closed(int source, const std::string& reason);
  void maybe_finish(int source, peer_state& p);
  /// Every 100 ms at most: reports held warnings that are due, drops peers silent past the idle timeout.
  void housekeeping();
  void drop_peer(int peer, peer_state& p, const std::string& why, bool closed = false);
  void finish_peer(int peer, peer_state& p, bool served);
  /// Takes the peer's requests that wait out of the scheduler (nobody waits for them).
  std::size_t drop_queued_work(int peer, peer_state& p);
  void forget_if_done(int peer);
  /// Everything kept about `peer`, whose connection has ended, goes (held warnings are reported).
  void forget(int peer);
  void warn_about(int peer, const std::string& text);
  void report_held_warnings(int peer, warning_count& w);
  detail::session_terms terms() const {
    return {cfg.limits, cfg.credits, static_cast<std::uint64_t>(cfg.idle_timeout.count())};
  }
};

}  // namespace offload
