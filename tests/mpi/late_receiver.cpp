// Receivers that come late (issue 27). Run with 3 ranks: rank 0 is a receiver that starts
// serving 5 s after the job started (its rank is up: only its receiver is late).
//  - rank 1: a transmitter with a 1 s handshake timeout starts anyway (no handshake_error),
//    falls back (fallback_no_receiver) until the receiver answers its hello, then is served
//    remotely; every result is checked against the CPU.
//  - rank 2: a strict transmitter (require_receivers) throws handshake_error naming the late
//    receiver; then a default one runs 20 events, all on the CPU, and closes long before the
//    receiver starts: its goodbye (sent to a receiver that never answered) lets the receiver
//    finish that session at once instead of waiting out its idle timeout (60 s, past this
//    test's ctest timeout).
// The receiver ends after three sessions (rank 1's, and rank 2's two), none dropped.
#include <offload/mpi.hpp>
#include <offload/receiver.hpp>
#include <offload/runtime.hpp>
#include <offload/transmitter.hpp>

#include "finish.hpp"

#include <chrono>
#include <string>
#include <thread>

using namespace offload;

namespace {

constexpr auto late_by = std::chrono::seconds(5);

/// One synthetic event, checked; returns how it was computed.
fallback_reason one_event(transmitter& tx, const kernel& k, std::uint64_t seed) {
  const auto in = k.make_inputs({seed, 64, 50});
  const auto r = tx.submit(k.name(), product_views(in)).get();
  EXPECT(r.ok(), "event %llu failed: %s", (unsigned long long)seed, r.error().c_str());
  if (r.ok()) {
    const auto diff = compare_with_cpu(k, product_views(in), r.products());
    EXPECT(diff.empty(), "event %llu: %s", (unsigned long long)seed, diff.c_str());
  }
  return r.fallback();
}

void patient(runtime& rt, const kernel_registry& kernels) {
  transmitter_config cfg;
  cfg.handshake_timeout = std::chrono::seconds(1);
  transmitter tx(rt, kernels, mpi_link{{0}}, cfg);  // returns after 1 s: the receiver has not answered
  const auto& k = *kernels.find("synthetic");
  std::uint64_t remote = 0, seed = 0;
  // Events go on (on the CPU) until the receiver is up, then 20 more are served remotely.
  while (remote < 20 && seed < 2'000'000) remote += one_event(tx, k, ++seed) == fallback_reason::none ? 1 : 0;
  tx.close();
  const auto s = tx.stats();
  std::printf("patient: %llu events, %llu on the CPU (no receiver) before the receiver answered, then %llu remote\n",
              (unsigned long long)s.submitted, (unsigned long long)s.fallback_no_receiver,
              (unsigned long long)s.remote);
  EXPECT(s.fallback_no_receiver > 0 && s.remote == 20 && s.fallbacks == s.fallback_no_receiver,
         "no receiver %llu, remote %llu, fallbacks %llu", (unsigned long long)s.fallback_no_receiver,
         (unsigned long long)s.remote, (unsigned long long)s.fallbacks);
}

void quick(runtime& rt, const kernel_registry& kernels) {
  transmitter_config strict;
  strict.handshake_timeout = std::chrono::milliseconds(500);
  strict.require_receivers = true;
  std::string error;
  try {
    transmitter tx(rt, kernels, mpi_link{{0}}, strict);
  } catch (const handshake_error& e) {
    error = e.what();
  }
  std::printf("strict: %s\n", error.c_str());
  EXPECT(error == "receiver rank 0 did not answer the handshake within 500 ms", "strict start: '%s'", error.c_str());

  transmitter_config cfg;
  cfg.handshake_timeout = std::chrono::seconds(1);
  transmitter tx(rt, kernels, mpi_link{{0}}, cfg);
  const auto& k = *kernels.find("synthetic");
  for (std::uint64_t seed = 1; seed <= 20; ++seed)
    EXPECT(one_event(tx, k, seed) == fallback_reason::no_receiver, "event %llu did not fall back",
           (unsigned long long)seed);
  tx.close();
  std::printf("quick: 20 events on the CPU, closed before the receiver started\n");
}

void late_receiver(runtime& rt, const kernel_registry& kernels) {
  std::this_thread::sleep_for(late_by);  // (a receiver that starts late: not work)
  receiver rx(rt, kernels, mpi_link{}, 3);
  const auto s = rx.wait();
  std::printf(
      "receiver: started %lld s late, served %llu requests; peers finished %llu, dropped %llu, handshake "
      "failures %llu\n",
      (long long)late_by.count(), (unsigned long long)s.requests, (unsigned long long)s.peers_finished,
      (unsigned long long)s.peers_dropped, (unsigned long long)s.handshake_failures);
  EXPECT(s.requests == 20 && s.peers_finished == 3 && s.peers_dropped == 0 && s.handshake_failures == 0,
         "requests %llu, finished %llu, dropped %llu", (unsigned long long)s.requests,
         (unsigned long long)s.peers_finished, (unsigned long long)s.peers_dropped);
}

}  // namespace

int main() {
  return offload_test::run_test(3, [](runtime& rt) {
    const auto& kernels = kernel_registry::builtin();
    if (rt.rank() == 0) late_receiver(rt, kernels);
    if (rt.rank() == 1) patient(rt, kernels);
    if (rt.rank() == 2) quick(rt, kernels);
  });
}
