#pragma once
// The transmitter's state (offload/transmitter.hpp), shared by its units:
//   transmitter.cpp  the request lifecycle: submit, dispatch, answers, timeouts, fallback
//   sessions.cpp     each receiver's session: hello and terms, keepalives, goodbye; open and close
//   routing.*        the choice of receiver and its credits; fallback_pool.* the local CPU runs

#include <offload/transmitter.hpp>

#include "fallback_pool.hpp"
#include "request.hpp"
#include "routing.hpp"
#include "src/transport/transport.hpp"

#include <atomic>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <queue>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace offload {

struct transmitter::impl final : progress_client {
  using clock_type = detail::clock_type;
  using receiver_link = detail::receiver_link;
  using request_ptr = detail::request_ptr;

  impl(runtime& r, const kernel_registry& k, const transport& link, transmitter_config c)
      : rt(r), kernels(k), cfg(std::move(c)), pool(host_pool::make(cfg.memory)), request_limits(cfg.limits) {
    if (cfg.credits == 0) throw std::invalid_argument("transmitter credits must be at least 1");
    if (cfg.reconnect_max.count() <= 0)
      throw std::invalid_argument("transmitter reconnect_max must be positive, not " +
                                  std::to_string(cfg.reconnect_max.count()) + " ms");
    signature = kernels.signature();
    std::vector<int> peers;
    ep = link.impl().connect(rt, {*pool, cfg.limits.max_message_bytes, 0, &kernels, cfg.limits}, peers);
    for (int peer : peers) {
      receiver_link l;
      l.peer = peer;
      links.push_back(std::move(l));
    }
    fallbacks = std::make_unique<detail::fallback_pool>(
        cfg.fallback_threads, [this](const request_ptr& req, result&& res) { deliver(req, std::move(res)); });
  }

  runtime& rt;
  kernel_registry kernels;
  transmitter_config cfg;
  std::shared_ptr<host_pool> pool;  // shared with requests that outlive a call
  std::unique_ptr<detail::endpoint> ep;
  std::atomic<std::uint64_t> next_id{1};

  // Submissions from worker threads.
  std::mutex submit_mutex;
  std::vector<request_ptr> submissions;

  // Progress-thread state.
  std::vector<receiver_link> links;                          // guarded by link_mutex for readers
  std::unordered_map<std::uint64_t, request_ptr> live;       // not yet delivered nor fallen back
  std::unordered_map<std::uint64_t, std::size_t> in_flight;  // sent, no reply yet: id -> link
  std::deque<request_ptr> waiting;                           // for a credit
  using deadline = std::pair<clock_type::time_point, std::uint64_t>;
  std::priority_queue<deadline, std::vector<deadline>, std::greater<>> deadlines;
  std::size_t next_link = 0;
  clock_type::time_point next_session_check;  // keepalives and reconnects
  bool closing = false;                       // goodbyes are going out: no reconnects
  bool started = false;                       // the constructor returned: later sessions are logged
  std::string signature;                      // our kernel list, as the hello carries it
  // Ours, narrowed to the receivers' in session when the constructor returns (read by submit
  // without a lock: written only before); a receiver that opens later with smaller limits gets
  // only the requests within them (eligible).
  wire_limits request_limits;
  std::unordered_set<std::uint32_t> defects_logged;  // kernels whose broken outputs were logged

  // Link states (handshake and goodbye progress), written by the progress thread under this
  // mutex and read by the threads that wait for them.
  std::mutex link_mutex;
  std::condition_variable link_cv;

  // Delivery accounting.
  std::mutex delivered_mutex;
  std::condition_variable delivered_cv;
  std::uint64_t submitted_count = 0;
  std::uint64_t delivered_count = 0;

  mutable std::mutex stats_mutex;
  transmitter_stats st;
  bool closed = false;

  // Last: its threads call deliver, so it goes before everything else.
  std::unique_ptr<detail::fallback_pool> fallbacks;

  template <class F> void count(F&& f) {
    std::lock_guard lock(stats_mutex);
    f(st);
  }

  bool progress() override;
  std::chrono::steady_clock::time_point wake_by() const override { return ep->next_release(); }
  void handle(detail::incoming in);
  void handle_session(receiver_link& link, const message& m, std::uint64_t received_ns);
  /// A hello_ack: the session opens (terms, kernel map) or is refused.
  void open_session(receiver_link& link, const message& m, std::uint64_t received_ns);
  /// `link` has no session any more (its connection ended, it dropped ours, it could not be
  /// reached): requests in flight to it fall back now, and it is tried again later when the
  /// transport can reach it anew.
  void lose_session(std::size_t li, const std::string& reason);
  /// Sends a hello to `link` (state connecting).
  void say_hello(receiver_link& link);
  /// Links that are down and due: reconnected and greeted.
  void reconnect_due(clock_type::time_point now);
  /// Whether request `r` may go to links[li] (if it takes its kernel): it did not answer it
  /// `busy`, and `r` is within its limits (those of a receiver that opened after the
  /// constructor returned may be smaller than what submit checked).
  bool eligible(const detail::request_state& r, std::size_t li) const;
  void handle_answer(receiver_link& link, int source, wire_result<message> decoded, std::uint64_t id,
                     std::uint64_t received_ns);
  void dispatch();
  /// Every 50 ms: reconnects the links that are down and due, and sends keepalives where due.
  void tend_sessions(clock_type::time_point now);
  void expire(clock_type::time_point now);
  void fall_back(request_ptr r, fallback_reason why, std::string remote_error = {});
  /// Checks a submit's kernel and inputs (throwing what submit documents) and makes its request.
  request_ptr prepare(std::string_view kernel_name, const product_views& inputs, result_callback done,
                      const submit_options& options);
  /// Hands a prepared request to the progress thread.
  void queue(request_ptr r);
  void deliver(const request_ptr& r, result&& res);
  /// A receiver not in session when the constructor returns, or lacking some of our kernels:
  /// what (handshake_error's text with require_receivers) and what follows for its requests.
  struct start_problem {
    std::string what, then;
  };
  /// Sends every hello and waits for the answers (handshake_timeout); one problem per
  /// receiver that has one.
  std::vector<start_problem> handshake();
  void say_goodbye();
};

}  // namespace offload
