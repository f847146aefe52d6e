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
      : rt(r),
        kernels(k),
        cfg(std::move(c)),
        pool(std::make_shared<detail::buffer_pool>()),
        request_limits(cfg.limits) {
    if (cfg.credits == 0) throw std::invalid_argument("transmitter credits must be at least 1");
    std::vector<int> peers;
    ep = link.impl().connect(rt, {*pool, cfg.limits.max_message_bytes}, peers);
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
  std::shared_ptr<detail::buffer_pool> pool;  // shared with requests that outlive a call
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
  clock_type::time_point next_keepalive_check;
  wire_limits request_limits;                        // ours, narrowed to every receiver's in the handshake
  std::unordered_set<std::uint32_t> defects_logged;  // kernels whose broken outputs were logged

  // Handshake and goodbye progress, read by the threads that wait for them.
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
  void handle_answer(receiver_link& link, int source, wire_result<message> decoded, std::uint64_t id,
                     std::uint64_t received_ns);
  void connection_closed(std::size_t link, const std::string& reason);
  void dispatch();
  void send_keepalives(clock_type::time_point now);
  void expire(clock_type::time_point now);
  void accept_terms();
  void fall_back(request_ptr r, fallback_reason why, std::string remote_error = {});
  /// Checks a submit's kernel and inputs (throwing what submit documents) and makes its request.
  request_ptr prepare(std::string_view kernel_name, const product_views& inputs, result_callback done);
  /// Hands a prepared request to the progress thread.
  void queue(request_ptr r);
  void deliver(const request_ptr& r, result&& res);
  void handshake();
  void say_goodbye();
};

}  // namespace offload
