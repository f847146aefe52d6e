// Limits, configured on the receiver and learnt by the transmitter in the handshake. Rank 0 is
// a receiver that grants 2 credits and accepts at most 64 KiB, 4 products and 12-character
// names; rank 1's transmitter is configured with 8 credits and the default limits. Each limit
// must be refused at submit with an error naming it, and 24 slow requests at once must all be
// served remotely: a transmitter sending more than 2 at a time would get credit_exceeded
// errors (fallbacks). Run with 2 ranks.
#include <offload/receiver.hpp>
#include <offload/runtime.hpp>
#include <offload/transmitter.hpp>

#include "finish.hpp"
#include "transport.hpp"

#include <stdexcept>

using namespace offload;

namespace {

void expect_refused(transmitter& tx, const std::vector<product>& in, const std::string& text) {
  try {
    tx.submit("echo", product_views(in), [](result&&) {});
    EXPECT(false, "submit was not refused (expected '%s')", text.c_str());
  } catch (const std::length_error& e) {
    EXPECT(std::string(e.what()).find(text) != std::string::npos, "refused with '%s', expected '%s'", e.what(),
           text.c_str());
    std::printf("limits: refused at submit: %s\n", e.what());
  }
}

void transmit(runtime& rt, const offload_test::transport& T, const kernel_registry& kernels) {
  transmitter_config cfg;
  cfg.credits = 8;
  auto tx = T.transmitter(rt, kernels, {0}, cfg);
  auto& t = *tx;
  std::vector<product> five;
  for (int i = 0; i < 5; ++i)  // (append, not "p" + std::to_string(i): GCC 12 -O3 false -Wrestrict, bug 105329)
    five.push_back(product::make(std::string("p").append(std::to_string(i)), std::vector<float>{1}));
  expect_refused(t, five, "request has 5 products; the limit is 4 (max_products)");
  expect_refused(t, {product::make("thirteenchars", std::vector<float>{1})},
                 "has 13 characters; the limit is 12 (max_name_length)");
  expect_refused(t, {product::make("big", std::vector<std::uint8_t>(65536, 1))},
                 "exceeds the maximum message size of 65536 (max_message_bytes)");

  const auto& synthetic = *kernels.find("synthetic");
  const auto in = synthetic.make_inputs({1, 256, 20000});  // a few ms each: requests queue up
  std::vector<std::future<result>> futures;
  for (int i = 0; i < 24; ++i) futures.push_back(t.submit("synthetic", product_views(in)));
  for (auto& f : futures) {
    auto r = f.get();
    EXPECT(r.ok() && r.fallback() == fallback_reason::none, "request fell back (%s): %s",
           std::string(to_string(r.fallback())).c_str(), r.remote_error().c_str());
  }
  t.close();
  const auto s = t.stats();
  std::printf("limits: transmitter: submitted %llu, remote %llu, fallbacks %llu\n", (unsigned long long)s.submitted,
              (unsigned long long)s.remote, (unsigned long long)s.fallbacks);
  EXPECT(s.submitted == 24 && s.remote == 24, "remote %llu of %llu", (unsigned long long)s.remote,
         (unsigned long long)s.submitted);
}

}  // namespace

int main(int argc, char** argv) {
  offload_test::transport T(argc, argv);
  return offload_test::run_test(2, [&](runtime& rt) {
    const auto& kernels = kernel_registry::builtin();
    if (rt.rank() == 0) {
      receiver_config cfg;
      cfg.credits = 2;
      cfg.limits = {65536, 4, 12};
      auto rx = T.receiver(rt, kernels, 1, cfg);
      T.exchange(rt, rx.get());
      const auto s = rx->wait();
      EXPECT(s.requests == 24 && s.error_replies == 0, "receiver: requests %llu, error replies %llu",
             (unsigned long long)s.requests, (unsigned long long)s.error_replies);
    } else {
      T.exchange(rt, nullptr);
      transmit(rt, T, kernels);
    }
  });
}
