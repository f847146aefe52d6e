// The receiver's scheduler over a real transport (MPI, or gRPC with --transport grpc), one
// phase after another, 4 ranks (receivers on rank 0, and on rank 3 in the busy phase):
//  1. fairness with batching on (max_batch 8, one instance): rank 1 sends a burst of 24
//     requests; rank 2's single request, sent once the burst is queued, waits for the batch
//     running and at most one more (the receiver's own times, from the replies);
//  2. no kernel blocks another: 20 echoes (inline runs off) all complete while one synthetic
//     request of about 5 s runs;
//  3. priorities: behind a running request, a request of priority 1 runs before one of the
//     kernel's default (2), which runs before four of priority 3;
//  4. busy: two receivers with max_queue 1; a transmitter sending 8 requests gets `busy`
//     answers, tries the other receiver, else runs them locally; every result is correct and the
//     receivers' busy counts add up to the transmitter's;
//  5. deadlines: a transmitter with a 300 ms timeout sends a long request, then four short
//     ones queued behind it: with deadlines the four are answered `expired` and never run;
//     without, all five run for events that fell back already.
#include <offload/mpi.hpp>
#include <offload/receiver.hpp>
#include <offload/runtime.hpp>
#include <offload/transmitter.hpp>

#include "finish.hpp"
#include "transport.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <future>
#include <mutex>
#include <numeric>
#include <set>
#include <vector>

using namespace offload;
using test_transport = offload_test::transport;

namespace {

double now_s() {  // CLOCK_MONOTONIC: one clock for every process of the node
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

template <class T> void send_to(runtime& rt, int dest, int tag, T value) {
  rt.call([&] { MPI_Send(&value, sizeof value, MPI_BYTE, dest, tag, comm_of(rt)); });
}
template <class T> T receive_from(runtime& rt, int source, int tag) {
  T value{};
  rt.call([&] { MPI_Recv(&value, sizeof value, MPI_BYTE, source, tag, comm_of(rt), MPI_STATUS_IGNORE); });
  return value;
}

/// synthetic's inputs: about `ms` milliseconds of one core here (1000 x 150000 is about 0.3 s).
std::vector<product> synthetic(const kernel_registry& kernels, std::uint64_t seed, double ms) {
  return kernels.find("synthetic")->make_inputs({seed, 1000, std::uint64_t(std::max(1.0, ms * 500))});
}

std::uint64_t batches(const receiver_stats& s) {
  return std::accumulate(s.batch_sizes.begin(), s.batch_sizes.end(), std::uint64_t{0});
}

receiver_config base() {
  receiver_config cfg;
  cfg.backend = backend_kind::cpu;
  cfg.threads = 1;
  cfg.inline_budget = {};  // every request through the scheduler
  return cfg;
}

/// Collects the completion of requests submitted with callbacks.
struct completions {
  std::mutex m;
  std::vector<std::pair<int, double>> done;  // (tag, time), in completion order
  std::vector<result> results;
  std::promise<void> first, all;
  std::size_t expected;
  explicit completions(std::size_t n) : expected(n) {}
  result_callback callback(int tag) {
    return [this, tag](result&& r) {
      std::lock_guard lock(m);
      done.emplace_back(tag, now_s());
      results.push_back(std::move(r));
      if (done.size() == 1) first.set_value();
      if (done.size() == expected) all.set_value();
    };
  }
  void wait() { all.get_future().wait(); }
};

/// One phase: receivers on `receiver_ranks` made with `cfg`, every other rank a transmitter to
/// them running `body` (which may do nothing); receivers then run `check` on their statistics.
template <class Body, class Check> void phase(runtime& rt, test_transport& T, const char* name,
                                              const std::vector<int>& receiver_ranks, const receiver_config& cfg,
                                              Body body, Check check) {
  const bool receives = std::find(receiver_ranks.begin(), receiver_ranks.end(), rt.rank()) != receiver_ranks.end();
  const std::size_t transmitters = std::size_t(rt.size()) - receiver_ranks.size();
  if (rt.rank() == 0) std::printf("-- %s\n", name);
  std::unique_ptr<receiver> rx;
  if (receives) rx = T.receiver(rt, kernel_registry::builtin(), transmitters, cfg);
  T.exchange(rt, rx.get());
  if (receives) {
    check(rx->wait());
    rx.reset();  // (a receiver that is done still takes messages until it is destroyed)
  } else {
    body();
  }
  rt.barrier();
}

}  // namespace

int main(int argc, char** argv) {
  test_transport T(argc, argv);
  return offload_test::run_test(4, [&](runtime& rt) {
    const auto& kernels = kernel_registry::builtin();
    const int me = rt.rank();

    // 1. Fairness with batching on.
    {
      auto cfg = base();
      cfg.max_batch = 8;
      cfg.credits = 32;
      transmitter_config tc;
      tc.credits = 32;
      phase(
          rt, T, "fairness, max_batch 8", {0}, cfg,
          [&] {
            auto tx = T.transmitter(rt, kernels, {0}, tc);
            if (me == 1) {
              constexpr int burst = 24;
              completions c(burst);
              const auto in = synthetic(kernels, 1, 20);
              for (int i = 0; i < burst; ++i) tx->submit("synthetic", product_views(in), c.callback(i));
              // The first reply: the receiver ran the first request alone and took the rest meanwhile.
              c.first.get_future().wait();
              send_to(rt, 2, 90, 1);
              c.wait();
              // The receiver's own times (one clock on one host): when the lone request arrived and
              // when its batch started. No batch of the burst may start in between.
              const auto lone_in = receive_from<double>(rt, 2, 91);
              const auto lone_start = receive_from<double>(rt, 2, 91);
              std::set<double> starts_between;
              int ran_while_waiting = 0;
              for (const auto& r : c.results) {
                const double ks = r.timing().kernel_start;
                if (ks > lone_in && ks < lone_start) starts_between.insert(ks);
                if (ks >= lone_in && ks <= lone_start) ++ran_while_waiting;
              }
              std::printf(
                  "fairness: the lone request waited %.3f s at the receiver; %d of the burst's %d requests "
                  "started meanwhile or with it, in %zu batch(es) before its own\n",
                  lone_start - lone_in, ran_while_waiting, burst, starts_between.size());
              // The promise (README, docs/design.md): the batch running and at most one more. The
              // one more is a batch handed to the kernel thread just before the newcomer's request
              // was taken off the wire, which that thread starts (kernel_start) only after it: on a
              // loaded node (ASan, 4 ranks on 2 cores) the hand-off alone outlasts the gap.
              EXPECT(starts_between.size() <= 1,
                     "%zu batch(es) of the burst started after a newcomer's request arrived and before it ran",
                     starts_between.size());
              for (const auto& r : c.results) EXPECT(r.ok() && r.receiver() == 0, "burst: %s", r.error().c_str());
            } else if (me == 2) {
              receive_from<int>(rt, 1, 90);
              const auto r = tx->submit("synthetic", product_views(synthetic(kernels, 2, 20))).get();
              send_to(rt, 1, 91, r.timing().received);
              send_to(rt, 1, 91, r.timing().kernel_start);
              EXPECT(r.ok() && r.receiver() == 0, "lone request: %s", r.error().c_str());
            }
            tx->close();
          },
          [&](const receiver_stats& s) {
            std::printf("fairness: %llu requests in %llu batches\n", (unsigned long long)s.requests,
                        (unsigned long long)batches(s));
            EXPECT(s.requests == 25, "%llu requests", (unsigned long long)s.requests);
          });
    }

    // 2. A cheap kernel beside a slow one.
    {
      phase(
          rt, T, "echo beside a 1.5 s request", {0}, base(),
          [&] {
            auto tx = T.transmitter(rt, kernels, {0});
            if (me == 1) {
              auto slow = tx->submit("synthetic", product_views(synthetic(kernels, 3, 1500)));
              send_to(rt, 2, 92, 1);
              const auto r = slow.get();
              const double slow_done = now_s();
              EXPECT(r.ok() && r.receiver() == 0, "slow request: %s", r.error().c_str());
              const auto echoes_done = receive_from<double>(rt, 2, 93);
              std::printf("the 20 echoes ended %.3f s before the 1.5 s request\n", slow_done - echoes_done);
              EXPECT(echoes_done < slow_done, "the echoes waited for the slow kernel");
            } else if (me == 2) {
              receive_from<int>(rt, 1, 92);
              const auto& echo = *kernels.find("echo");
              for (int i = 0; i < 20; ++i) {
                const auto r = tx->submit("echo", product_views(echo.make_inputs({std::uint64_t(i), 64, 0}))).get();
                EXPECT(r.ok() && r.receiver() == 0, "echo: %s (fallback %s: %s)", r.error().c_str(),
                       std::string(to_string(r.fallback())).c_str(), r.remote_error().c_str());
              }
              send_to(rt, 1, 93, now_s());
            }
            tx->close();
          },
          [&](const receiver_stats& s) {
            EXPECT(s.inline_runs == 0, "%llu inline runs with the inline budget 0", (unsigned long long)s.inline_runs);
          });
    }

    // 3. Priorities.
    {
      auto cfg = base();
      cfg.kernel_priority["synthetic"] = 2;
      phase(
          rt, T, "priorities", {0}, cfg,
          [&] {
            auto tx = T.transmitter(rt, kernels, {0});
            if (me == 1) {
              completions c(7);
              tx->submit("synthetic", product_views(synthetic(kernels, 4, 1000)), c.callback(0));
              for (int i = 0; i < 4; ++i)
                tx->submit("synthetic", product_views(synthetic(kernels, 5, 5)), c.callback(3), {3});
              tx->submit("synthetic", product_views(synthetic(kernels, 6, 5)), c.callback(2));  // the default, 2
              tx->submit("synthetic", product_views(synthetic(kernels, 7, 5)), c.callback(1), {1});
              c.wait();
              std::vector<int> order;
              for (const auto& [tag, t] : c.done) order.push_back(tag);
              std::printf("priorities: completion order");
              for (int p : order) std::printf(" %d", p);
              std::printf(" (0: the running one; 1 highest)\n");
              EXPECT((order == std::vector<int>{0, 1, 2, 3, 3, 3, 3}), "requests did not run by priority");
              for (const auto& r : c.results) EXPECT(r.ok() && r.receiver() == 0, "%s", r.error().c_str());
            }
            tx->close();
          },
          [&](const receiver_stats&) {});
    }

    // 4. busy: the next receiver, else the CPU.
    {
      auto cfg = base();
      cfg.max_queue = 1;
      std::uint64_t rx_busy = 0, tx_busy = 0;
      phase(
          rt, T, "busy", {0, 3}, cfg,
          [&] {
            auto tx = T.transmitter(rt, kernels, {0, 3});
            if (me == 1) {
              const auto& k = *kernels.find("synthetic");
              std::vector<std::vector<product>> ins;
              std::vector<std::future<result>> fs;
              for (int i = 0; i < 8; ++i) {
                ins.push_back(synthetic(kernels, 10 + std::uint64_t(i), 200));
                fs.push_back(tx->submit("synthetic", product_views(ins.back())));
              }
              for (std::size_t i = 0; i < fs.size(); ++i) {
                const auto r = fs[i].get();
                EXPECT(r.ok(), "request %zu: %s", i, r.error().c_str());
                if (r.ok()) {
                  const auto diff = compare_with_cpu(k, product_views(ins[i]), r.products());
                  EXPECT(diff.empty(), "request %zu: %s", i, diff.c_str());
                }
              }
              tx->close();
              const auto s = tx->stats();
              tx_busy = s.busy;
              std::printf("busy: %llu busy answers, %llu remote, %llu fallbacks (%llu after errors)\n",
                          (unsigned long long)s.busy, (unsigned long long)s.remote, (unsigned long long)s.fallbacks,
                          (unsigned long long)s.fallback_error);
              EXPECT(s.busy >= 1, "no busy answer with max_queue 1");
              EXPECT(s.remote >= 4, "only %llu remote results: two receivers each run one and queue one",
                     (unsigned long long)s.remote);
              EXPECT(s.fallback_error >= 1, "no request fell back after busy answers from both receivers");
            }
            tx->close();
          },
          [&](const receiver_stats& s) { rx_busy = s.busy; });
      std::uint64_t mine[2] = {rx_busy, tx_busy}, sum[2] = {};
      rt.call([&] { MPI_Allreduce(mine, sum, 2, MPI_UINT64_T, MPI_SUM, comm_of(rt)); });
      if (me == 0) {
        std::printf("busy: receivers answered %llu, the transmitter counted %llu\n", (unsigned long long)sum[0],
                    (unsigned long long)sum[1]);
        EXPECT(sum[0] == sum[1] && sum[0] > 0, "receivers' busy %llu != transmitter's %llu", (unsigned long long)sum[0],
               (unsigned long long)sum[1]);
      }
    }

    // 5. Deadlines, on and off.
    for (const bool deadlines : {true, false}) {
      phase(
          rt, T, deadlines ? "deadlines" : "no deadlines", {0}, base(),
          [&] {
            transmitter_config tc;
            tc.timeout = std::chrono::milliseconds(300);
            tc.send_deadlines = deadlines;
            auto tx = T.transmitter(rt, kernels, {0}, tc);
            if (me == 1) {
              std::vector<std::future<result>> fs;
              fs.push_back(tx->submit("synthetic", product_views(synthetic(kernels, 20, 1200))));
              for (int i = 0; i < 4; ++i)
                fs.push_back(tx->submit("synthetic", product_views(synthetic(kernels, 21 + std::uint64_t(i), 100))));
              for (auto& f : fs) {
                const auto r = f.get();
                EXPECT(r.ok() && r.receiver() == -1, "expected a local result: %s", r.error().c_str());
              }
              tx->close();  // (waits for the late answers' goodbye_ack)
              const auto s = tx->stats();
              std::printf(
                  "%s: transmitter: %llu fallbacks, %llu expired answers, %llu late replies with %.3f s of "
                  "kernel time\n",
                  deadlines ? "deadlines" : "no deadlines", (unsigned long long)s.fallbacks,
                  (unsigned long long)s.expired, (unsigned long long)s.late_replies, 1e-9 * double(s.late_kernel_ns));
              EXPECT(s.fallbacks == 5, "%llu fallbacks", (unsigned long long)s.fallbacks);
              EXPECT(s.expired == (deadlines ? 4u : 0u), "%llu expired answers", (unsigned long long)s.expired);
              // The receiver is suspect (its answers were late), yet close() waited for all five
              // (expired answers count as late replies): a reply sent after this side stopped
              // receiving would never be taken.
              EXPECT(s.late_replies == 5, "%llu late replies", (unsigned long long)s.late_replies);
            }
            tx->close();
          },
          [&](const receiver_stats& s) {
            std::printf("%s: receiver: %llu requests, %llu run, %llu expired, busy %.2f s\n",
                        deadlines ? "deadlines" : "no deadlines", (unsigned long long)s.requests,
                        (unsigned long long)batches(s), (unsigned long long)s.expired, s.busy_s);
            EXPECT(s.expired == (deadlines ? 4u : 0u), "receiver: %llu expired", (unsigned long long)s.expired);
            EXPECT(batches(s) == (deadlines ? 1u : 5u), "receiver ran %llu batches", (unsigned long long)batches(s));
          });
    }
  });
}
