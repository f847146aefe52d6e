// The adaptive wait policy's rule (src/progress/poll_budget.hpp) on made-up idle gaps: no MPI,
// no clock, no timing thresholds.
#include "src/progress/poll_budget.hpp"

#include <catch2/catch.hpp>

#include <vector>

using namespace offload;
using namespace std::chrono_literals;
using detail::decide;
using detail::gap_history;
using detail::poll_budget;
using us = std::chrono::microseconds;

namespace {
std::vector<us> repeat(us gap, std::size_t n) {
  return std::vector<us>(n, gap);
}
/// `n` gaps cycling through `pattern` (what one request leaves on a rank, e.g. a send
/// completion, a reply, the next event's wake).
std::vector<us> cycle(const std::vector<us>& pattern, std::size_t n) {
  std::vector<us> out;
  for (std::size_t i = 0; i < n; ++i) out.push_back(pattern[i % pattern.size()]);
  return out;
}
}  // namespace

TEST_CASE("decide: without a gap seen, or with a fixed policy, poll as configured") {
  progress_options o;  // spin 50 µs, yield 2 ms, max_sleep 200 µs, adaptive
  CHECK(decide({}, o) == poll_budget{50us, 2000us});
  o.adaptive = false;
  CHECK(decide(repeat(20ms, 16), o) == poll_budget{50us, 2000us});
  CHECK(decide(repeat(10us, 16), o) == poll_budget{50us, 2000us});
  o.spin = o.yield = 1'000'000'000us;  // --wait-policy spin
  CHECK(decide(repeat(60ms, 16), o) == poll_budget{o.spin, o.yield});
  o.spin = o.yield = 0us;  // --wait-policy block
  CHECK(decide(repeat(10us, 16), o) == poll_budget{});
}

TEST_CASE("decide: gaps longer than twice max_sleep (requests ms apart): sleep at once") {
  const progress_options o;
  CHECK(decide(repeat(1ms, 16), o) == poll_budget{});
  CHECK(decide(repeat(20ms, 16), o) == poll_budget{});
  CHECK(decide(repeat(60ms, 3), o) == poll_budget{});
  CHECK(decide(repeat(401us, 16), o) == poll_budget{});  // just above 2 x max_sleep
  CHECK(decide(repeat(401us, 1), o) == poll_budget{});
}

TEST_CASE("decide: shorter gaps: poll about twice the gap; spin within the spin bound, else yield") {
  progress_options o;
  CHECK(decide(repeat(10us, 16), o) == poll_budget{20us, 20us});   // spin only
  CHECK(decide(repeat(25us, 16), o) == poll_budget{50us, 50us});   // spin, to the bound
  CHECK(decide(repeat(40us, 16), o) == poll_budget{0us, 80us});    // longer: yield from the start
  CHECK(decide(repeat(150us, 16), o) == poll_budget{0us, 300us});  // requests about 0.05 ms apart
  CHECK(decide(repeat(400us, 16), o) == poll_budget{0us, 800us});  // at 2 x max_sleep: still polled
  CHECK(decide(repeat(0us, 16), o) == poll_budget{detail::min_poll, detail::min_poll});
  o.yield = 100us;
  CHECK(decide(repeat(150us, 16), o) == poll_budget{0us, 100us});  // within the yield bound
  o.spin = 1000us;
  CHECK(decide(repeat(150us, 16), o) == poll_budget{300us, 300us});  // a larger spin bound: spin
  o.spin = o.yield = 0us;                                            // --spin-us 0 --yield-us 0: never polls
  CHECK(decide(repeat(10us, 16), o) == poll_budget{});
  o = {};
  o.max_sleep = 1ms;  // a longer sleep: longer gaps are worth polling
  CHECK(decide(repeat(900us, 16), o) == poll_budget{0us, 1800us});
}

TEST_CASE("decide: the longest gap once the longest fifth is left out: a few stray gaps change nothing") {
  const progress_options o;
  static_assert(gap_history::capacity == 16);
  auto gaps = repeat(30us, 16);
  gaps[5] = gaps[9] = gaps[14] = 20ms;  // three long pauses (a descheduled thread) among quick messages
  CHECK(decide(gaps, o) == poll_budget{0us, 60us});
  gaps[2] = 20ms;  // four of sixteen
  CHECK(decide(gaps, o) == poll_budget{});
  gaps = repeat(20ms, 16);
  gaps[3] = 30us;  // quick ones among slow ones: still asleep
  gaps[6] = 1us;
  CHECK(decide(gaps, o) == poll_budget{});
  // Fewer gaps: one in five left out (none of four).
  CHECK(decide({{30us, 30us, 30us, 20ms}}, o) == poll_budget{});
  CHECK(decide({{30us, 30us, 30us, 30us, 20ms}}, o) == poll_budget{0us, 60us});
  // Only the last gap_history::capacity gaps count.
  auto many = repeat(20ms, 4);
  const auto quick = repeat(30us, gap_history::capacity);
  many.insert(many.end(), quick.begin(), quick.end());
  CHECK(decide(many, o) == poll_budget{0us, 60us});
}

TEST_CASE("decide: what a request leaves on each rank") {
  const progress_options o;
  // A transmitter, one request every 20 ms: its send completes (1 µs), the reply comes
  // (500 µs), then nothing until its worker's next request wakes it (20 ms): sleep at once.
  for (std::size_t n = 1; n <= gap_history::capacity; ++n) {  // however many gaps it has seen
    CAPTURE(n);
    CHECK(decide(cycle({20ms, 1us, 500us}, n), o) == poll_budget{});
    CHECK(decide(cycle({20ms, 1us, 200us}, n), o) == poll_budget{});  // a quick reply too
    // Its receiver: the request (20 ms), the kernel thread's result (30 µs), the send (1 µs).
    CHECK(decide(cycle({20ms, 30us, 1us}, n), o) == poll_budget{});
    // One request every 0.05 ms: every gap is caught by polling (yielding) twice the longest.
    CHECK(decide(cycle({150us, 1us, 60us}, n), o) == poll_budget{0us, 300us});
    CHECK(decide(cycle({200us, 30us, 1us}, n), o) == poll_budget{0us, 400us});
  }
  // A request that leaves three short gaps and one long: sleep. With four short ones the long
  // gaps look like strays: it polls twice the longest short one, which costs little.
  CHECK(decide(cycle({1us, 2us, 30us, 1ms}, gap_history::capacity), o) == poll_budget{});
  CHECK(decide(cycle({1us, 2us, 30us, 1ms, 3us}, gap_history::capacity), o) == poll_budget{0us, 60us});
}

TEST_CASE("gap_history keeps the last gaps; the rule follows a change of rate") {
  const progress_options o;
  gap_history h;
  CHECK(h.recent().empty());
  CHECK(decide(h.recent(), o) == poll_budget{50us, 2000us});
  for (int i = 0; i < 40; ++i) h.add(60ms);  // a request every 60 ms
  CHECK(h.recent().size() == gap_history::capacity);
  CHECK(decide(h.recent(), o) == poll_budget{});
  for (std::size_t i = 0; i + 4 < gap_history::capacity; ++i) h.add(100us);  // the rate goes up
  CHECK(decide(h.recent(), o) == poll_budget{});                             // four long gaps left
  h.add(100us);
  CHECK(decide(h.recent(), o) == poll_budget{0us, 200us});  // three left: ignored
  for (int i = 0; i < 3; ++i) h.add(5ms);                   // and down again
  CHECK(decide(h.recent(), o) == poll_budget{0us, 200us});  // three of the last sixteen...
  h.add(5ms);                                               // ... four
  CHECK(decide(h.recent(), o) == poll_budget{});
}
