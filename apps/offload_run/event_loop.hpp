#pragma once
// The event loop of one transmitter rank, in the manner of cmsRun with ExternalWork modules:
// T worker threads, S events in flight (S may exceed T). An event runs its "before" CPU work
// and then its acquire step, which submits every module's request and returns; the last reply
// schedules the produce step (validate, "after" CPU work, digest). A worker never waits on the
// network. In local mode the modules run inline on the event's thread instead.

#include "apps/common/workload.hpp"

#include <offload/transmitter.hpp>

#include <array>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

namespace offload::app {

struct loop_options {
  int threads = 2;
  int inflight = 4;
  std::uint64_t events = 100;
  std::uint64_t seed = 12345;
  int stream = 0;  ///< which transmitter this is (0..): events of stream s are the same in every mode
  bool validate = false;
  double tolerance = 1e-5;
  bool copy_inputs = false;    ///< --copy-inputs: submit(product_views), one copy, not shared_products
  bool same_inputs = false;    ///< --same-inputs: every event submits the same inputs, made once (overhead benchmarks)
  bool fresh_malloc = false;   ///< --fresh-malloc: inputs in malloc'd vectors, not in the transmitter's pool
  bool hold_cpu = false;       ///< --cpu-work emulated: CPU work before/after is held, not computed
  std::uint32_t priority = 0;  ///< --priority: every request's (submit_options)
};

/// How a request's result was made.
enum class request_kind : int { remote = 0, fallback = 1, inline_cpu = 2 };

/// One request of one event: what made it, its latency (submit to result, or the inline run)
/// and, when remote, its five stages (see offload::request_timing), all in seconds.
struct request_record {
  int module = 0;
  request_kind kind = request_kind::remote;
  double latency = 0;
  std::array<double, 5> stages{};
  static constexpr std::size_t doubles = 8;  ///< flattened size, for gathering
  void flatten(std::vector<double>& out) const;
  static request_record unflatten(const double* p);
};

class event_loop {
 public:
  /// `tx` null: local mode. `kernels[i]` is the kernel of module i of `w`.
  event_loop(transmitter* tx, const workload& w, std::vector<const kernel*> kernels, const loop_options& o);

  /// Runs every event. `tick(done)` is called on this thread about once a second;
  /// `on_worker_start(t)` on worker t before it takes work (e.g. to bind it to a core).
  void run(const std::function<void(std::uint64_t)>& tick = {}, const std::function<void(int)>& on_worker_start = {});

  /// Seconds from the start of each event to the end of its produce step.
  const std::vector<double>& event_times() const { return m_event_time; }
  /// Seconds each event waited on remote results: from the end of its acquire step (every
  /// request submitted) to the arrival of its last result (0 in local mode).
  const std::vector<double>& event_waits() const { return m_event_wait; }
  /// Seconds from the start of run() to the end of each event's produce step.
  const std::vector<double>& event_ends() const { return m_event_end; }
  std::vector<request_record> requests() const;
  /// Sum over events of a hash of each event's outputs and CPU work results: equal for the
  /// same events whatever the mode, routing or thread count (when the results are equal).
  std::uint64_t digest() const { return m_digest.load(); }
  std::uint64_t mismatches() const { return m_mismatches.load(); }
  std::uint64_t failed() const { return m_failed.load(); }
  /// Remote results whose five stages did not add up to their round trip, or whose round trip
  /// exceeded the latency measured independently (should be none).
  std::uint64_t stages_not_adding_up() const { return m_not_adding_up.load(); }

 private:
  struct event;
  input_params params(std::uint64_t index, std::size_t module) const;
  void push(std::function<void()> task);
  void work(int t, const std::function<void(int)>& on_start);
  void start();
  void produce(const std::shared_ptr<event>& ev);
  void finish(const std::shared_ptr<event>& ev);
  void check(const std::shared_ptr<event>& ev, std::size_t module, const product_views& outputs, bool remote,
             int receiver);

  transmitter* m_tx;
  const workload& m_w;
  std::vector<const kernel*> m_kernels;
  loop_options m_opt;
  std::vector<std::shared_ptr<const std::vector<product>>> m_same;  // --same-inputs: each module's, made once
  std::vector<double> m_event_time;
  std::vector<double> m_event_wait;
  std::vector<double> m_event_end;
  std::chrono::steady_clock::time_point m_run_start;
  std::vector<request_record> m_requests;  // [event * modules + module], each written once
  std::atomic<std::uint64_t> m_next{0};
  std::atomic<std::uint64_t> m_digest{0};
  std::atomic<std::uint64_t> m_mismatches{0};
  std::atomic<std::uint64_t> m_failed{0};
  std::atomic<std::uint64_t> m_not_adding_up{0};
  std::mutex m_mutex;
  std::condition_variable m_cv;
  std::condition_variable m_done_cv;
  std::deque<std::function<void()>> m_tasks;
  std::uint64_t m_produced = 0;  // guarded by m_mutex
};

}  // namespace offload::app
