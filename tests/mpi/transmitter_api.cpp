// The transmitter's contract, on real ranks. Run with 4 ranks: 0-1 receivers, 2-3 transmitters.
//  - future and callback forms; submit from many threads; every result delivered exactly once
//  - unknown kernels and bad inputs are rejected at submit, before anything is sent
//  - least-outstanding and round-robin routing both use every receiver
//  - a tiny per-request timeout makes every request fall back (timeout, then no_receiver once both receivers
//    are set aside), results stay right, late replies are counted
//  - no receiver at all: everything falls back
#include <offload/receiver.hpp>
#include <offload/runtime.hpp>
#include <offload/transmitter.hpp>

#include "finish.hpp"
#include "transport.hpp"

#include <atomic>
#include <cmath>
#include <mutex>
#include <set>
#include <thread>

using namespace offload;

namespace {

std::string check_result(const kernel& k, const std::vector<product>& in, const result& r) {
  if (!r.ok()) return r.error();
  return compare_with_cpu(k, product_views(in), r.products());
}

void many_threads(runtime& rt, const offload_test::transport& T, const kernel_registry& kernels, routing policy) {
  transmitter_config cfg;
  cfg.policy = policy;
  cfg.credits = 4;
  auto tx = T.transmitter(rt, kernels, {0, 1}, cfg);
  const auto& k = *kernels.find("clustering");
  constexpr int threads = 8, per_thread = 40;
  std::vector<std::atomic<int>> calls(threads * per_thread);
  std::mutex m;
  std::set<int> receivers_seen;
  std::atomic<int> wrong{0};
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t)
    pool.emplace_back([&, t] {
      for (int i = 0; i < per_thread; ++i) {
        const int n = t * per_thread + i;
        auto in = std::make_shared<std::vector<product>>(k.make_inputs({std::uint64_t(n + 1), 12, 0}));
        tx->submit("clustering", product_views(*in), [&, n, in](result&& r) {
          calls[std::size_t(n)]++;
          if (!check_result(k, *in, r).empty()) wrong++;
          std::lock_guard lock(m);
          receivers_seen.insert(r.receiver());
        });
      }
    });
  for (auto& t : pool) t.join();
  tx->close();
  for (std::size_t n = 0; n < calls.size(); ++n)
    EXPECT(calls[n] == 1, "request %zu delivered %d times", n, calls[n].load());
  EXPECT(wrong == 0, "%d wrong results", wrong.load());
  EXPECT(receivers_seen == (std::set<int>{0, 1}), "not every receiver was used (%zu seen)", receivers_seen.size());
  EXPECT(tx->stats().remote == threads * per_thread, "remote %llu", (unsigned long long)tx->stats().remote);
}

void rejects_bad_submits(runtime& rt, const offload_test::transport& T, const kernel_registry& kernels) {
  auto tx = T.transmitter(rt, kernels, {0, 1});
  std::vector<product> in{product::make("x", std::vector<double>{1.0})};  // no "iterations"
  bool threw = false;
  try {
    tx->submit("nope", product_views(in));
  } catch (const std::invalid_argument& e) {
    threw = std::string(e.what()).find("unknown kernel 'nope'") != std::string::npos;
  }
  EXPECT(threw, "unknown kernel accepted");
  threw = false;
  try {
    tx->submit("synthetic", product_views(in));
  } catch (const input_error& e) {
    threw = std::string(e.what()).find("'iterations' is missing") != std::string::npos;
  }
  EXPECT(threw, "bad inputs accepted");
  threw = false;
  const auto valid = kernels.find("synthetic")->make_inputs({3, 100, 5});
  try {
    tx->submit("synthetic", product_views(valid), submit_options{0, std::chrono::microseconds(-1)});
  } catch (const std::invalid_argument& e) {
    threw = std::string(e.what()).find("submit_options::timeout is -1 us") != std::string::npos;
  }
  EXPECT(threw, "a negative timeout accepted");
  // The future form.
  const auto& k = *kernels.find("synthetic");
  auto good = k.make_inputs({3, 100, 5});
  auto r = tx->submit("synthetic", product_views(good)).get();
  EXPECT(r.receiver() >= 0 && r.fallback() == fallback_reason::none, "not remote");
  const auto& t = r.timing();  // times taken on one clock each are ordered exactly
  EXPECT(t.submitted > 0 && t.submitted <= t.sent && t.sent <= t.replied && t.kernel_start <= t.kernel_end,
         "timing out of order: %f %f %f %f %f", t.submitted, t.sent, t.kernel_start, t.kernel_end, t.replied);
  EXPECT(std::abs(t.transmitter_queue() + t.network_out() + t.receiver_queue() + t.kernel() + t.network_back() -
                  t.round_trip()) < 1e-9,
         "stages do not add up");
  EXPECT(check_result(k, good, r).empty(), "future result wrong");
  tx->close();
  EXPECT(tx->stats().submitted == 1, "submitted %llu", (unsigned long long)tx->stats().submitted);
}

/// Per request (submit_options::timeout; transmitter_config::timeout is what mpi.faults and the
/// runs with --timeout-ms set): 1 ms against the transmitter's 30 s.
void timeouts(runtime& rt, const offload_test::transport& T, const kernel_registry& kernels) {
  transmitter_config cfg;
  cfg.timeout = std::chrono::seconds(30);
  auto tx = T.transmitter(rt, kernels, {0, 1}, cfg);
  const auto& k = *kernels.find("synthetic");
  std::vector<std::vector<product>> inputs;
  std::vector<std::future<result>> fs;
  for (int i = 0; i < 6; ++i) inputs.push_back(k.make_inputs({std::uint64_t(i), 2000, 20000}));  // tens of ms each
  for (const auto& in : inputs)
    fs.push_back(tx->submit("synthetic", product_views(in), submit_options{0, std::chrono::microseconds(1000)}));
  for (std::size_t i = 0; i < fs.size(); ++i) {
    auto r = fs[i].get();
    // A receiver whose request timed out is set aside: requests not yet sent then fall back at once.
    EXPECT(r.fallback() == fallback_reason::timeout || r.fallback() == fallback_reason::no_receiver,
           "request %zu: fallback %s", i, std::string(to_string(r.fallback())).c_str());
    EXPECT(check_result(k, inputs[i], r).empty(), "request %zu: wrong fallback result", i);
  }
  // The receivers are slow, not gone: their late replies come (and bring them back).
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (tx->stats().late_replies == 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  tx->close();
  auto s = tx->stats();
  EXPECT(s.fallback_timeout >= 1 && s.fallback_timeout + s.fallback_no_receiver == 6 && s.remote == 0,
         "timeouts %llu, no receiver %llu, remote %llu", (unsigned long long)s.fallback_timeout,
         (unsigned long long)s.fallback_no_receiver, (unsigned long long)s.remote);
  // A request the transmitter saw time out while in flight sets its receiver aside; one whose
  // receiver answered `expired` first (its deadline passed in the receiver's queue: on a busy
  // machine all six can) does not, since that receiver did answer.
  EXPECT(s.suspensions + s.expired >= 1, "no receiver was set aside, and none answered expired");
  EXPECT(s.late_replies >= 1, "no late reply counted");
  std::printf("rank %d: %llu timeouts, %llu set aside, %llu answered expired, %llu late replies\n", rt.rank(),
              (unsigned long long)s.fallback_timeout, (unsigned long long)s.suspensions, (unsigned long long)s.expired,
              (unsigned long long)s.late_replies);
}

void no_receiver(runtime& rt, const offload_test::transport& T, const kernel_registry& kernels) {
  auto tx = T.transmitter(rt, kernels, {});
  const auto& k = *kernels.find("mlp");
  auto in = k.make_inputs({5, 3, 0});
  auto r = tx->submit("mlp", product_views(in)).get();
  EXPECT(r.fallback() == fallback_reason::no_receiver, "fallback %s", std::string(to_string(r.fallback())).c_str());
  EXPECT(r.timing().round_trip() == 0.0, "a local result has remote timing");
  EXPECT(check_result(k, in, r).empty(), "wrong local result");
}

}  // namespace

int main(int argc, char** argv) {
  offload_test::transport T(argc, argv);
  return offload_test::run_test(4, [&](runtime& rt) {
    const auto& kernels = kernel_registry::builtin();
    // One node: every rank is local, and local ranks follow world ranks.
    EXPECT(rt.local_size() == 4 && rt.local_rank() == rt.rank(), "local rank %d of %d", rt.local_rank(),
           rt.local_size());
    if (rt.rank() < 2) {
      // Each transmitter rank connects four times (four transmitter objects).
      auto rx = T.receiver(rt, kernels, 2 * 4);
      T.exchange(rt, rx.get());
      rx->wait();
    } else {
      T.exchange(rt, nullptr);
      many_threads(rt, T, kernels, routing::round_robin);
      many_threads(rt, T, kernels, routing::least_outstanding);
      rejects_bad_submits(rt, T, kernels);
      timeouts(rt, T, kernels);
      no_receiver(rt, T, kernels);
    }
  });
}
