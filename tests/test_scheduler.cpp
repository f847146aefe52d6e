// The scheduler (src/scheduler): every batching rule, on a fake clock.
#include "src/scheduler/scheduler.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <stdexcept>
#include <vector>

using namespace offload::detail;
using namespace std::chrono_literals;

namespace {
constexpr sched_time t0{0};

queue_rules batching(std::uint32_t max_batch, std::vector<std::uint32_t> preferred = {},
                     std::chrono::nanoseconds max_wait = 0ns) {
  queue_rules r;
  r.batching.max_batch = max_batch;
  r.batching.preferred = std::move(preferred);
  r.batching.max_wait = max_wait;
  return r;
}

/// Pushes `n` requests of `peer` with tickets from `first`.
void push_n(scheduler& s, std::size_t q, int peer, std::uint64_t first, int n, sched_time now,
            std::uint32_t priority = 0) {
  for (int i = 0; i < n; ++i)
    REQUIRE(s.push(q, {first + std::uint64_t(i), peer, 1, priority, no_deadline}, now) == scheduler::admission::queued);
}

std::vector<std::uint64_t> tickets(const std::optional<sched_batch>& b) {
  REQUIRE(b.has_value());
  return b->tickets;
}
}  // namespace

TEST_CASE("max_batch 1 runs each request alone, in arrival order for one peer") {
  scheduler s;
  const auto q = s.add_queue(batching(1));
  push_n(s, q, 7, 1, 3, t0);
  for (std::uint64_t id = 1; id <= 3; ++id) {
    CHECK(tickets(s.next(t0)) == std::vector<std::uint64_t>{id});
    CHECK_FALSE(s.next(t0));  // one instance, busy
    s.finished(q);
  }
  CHECK_FALSE(s.next(t0));
  CHECK(s.waiting() == 0);
  CHECK(s.running() == 0);
  CHECK_THROWS_AS(s.finished(q), std::logic_error);
}

TEST_CASE("batches grow while the executor is busy, up to max_batch; 0 means no limit") {
  scheduler s;
  const auto q = s.add_queue(batching(4));
  push_n(s, q, 1, 1, 1, t0);
  CHECK(tickets(s.next(t0)).size() == 1);  // an idle executor takes what waits at once
  push_n(s, q, 1, 2, 9, t0);
  CHECK_FALSE(s.next(t0));
  s.finished(q);
  CHECK(tickets(s.next(t0)) == std::vector<std::uint64_t>{2, 3, 4, 5});
  s.finished(q);
  CHECK(tickets(s.next(t0)).size() == 4);
  s.finished(q);
  CHECK(tickets(s.next(t0)) == std::vector<std::uint64_t>{10});

  scheduler unlimited;
  const auto u = unlimited.add_queue(batching(0));
  push_n(unlimited, u, 1, 1, 100, t0);
  CHECK(tickets(unlimited.next(t0)).size() == 100);
}

TEST_CASE("preferred sizes and max_wait follow Triton's dynamic batcher") {
  // max_batch 8, preferred {2, 4}, max_wait 100 us.
  scheduler s;
  const auto q = s.add_queue(batching(8, {4, 2}, 100us));
  SECTION("the largest preferred size that can be formed goes at once; the rest wait") {
    push_n(s, q, 1, 1, 5, t0);
    CHECK(tickets(s.next(t0)) == std::vector<std::uint64_t>{1, 2, 3, 4});
    s.finished(q);
    CHECK_FALSE(s.next(t0 + 99us));  // one request: no preferred size, not waited enough
    CHECK(s.wake_by() == t0 + 100us);
    CHECK(tickets(s.next(t0 + 100us)) == std::vector<std::uint64_t>{5});
  }
  SECTION("three waiting form the preferred 2") {
    push_n(s, q, 1, 1, 3, t0);
    CHECK(tickets(s.next(t0)).size() == 2);
  }
  SECTION("a full batch goes at once, whatever the preferred sizes and max_wait") {
    scheduler f;
    const auto fq = f.add_queue(batching(3, {}, 1s));
    push_n(f, fq, 1, 1, 2, t0);
    CHECK_FALSE(f.next(t0));
    push_n(f, fq, 1, 3, 1, t0 + 1us);
    CHECK(tickets(f.next(t0 + 1us)).size() == 3);
  }
  SECTION("max_wait is counted from the oldest request") {
    push_n(s, q, 1, 1, 1, t0);
    push_n(s, q, 2, 2, 1, t0 + 60us);  // two waiting: the preferred 2 would go; so only one here
    CHECK(tickets(s.next(t0 + 60us)).size() == 2);
    s.finished(q);
    push_n(s, q, 1, 3, 1, t0 + 70us);
    CHECK_FALSE(s.next(t0 + 120us));
    CHECK(s.wake_by() == t0 + 170us);
    CHECK(tickets(s.next(t0 + 170us)).size() == 1);
  }
  SECTION("with max_wait 0 and preferred sizes, an idle executor takes what waits") {
    scheduler z;
    const auto zq = z.add_queue(batching(8, {4}));
    push_n(z, zq, 1, 1, 3, t0);
    CHECK(tickets(z.next(t0)).size() == 3);
  }
}

TEST_CASE("max_batch_items limits a batch by items; one request always goes") {
  scheduler s;
  auto rules = batching(0);
  rules.batching.max_batch_items = 7;
  const auto q = s.add_queue(rules);
  for (std::uint64_t i = 1; i <= 3; ++i) s.push(q, {i, 1, 3, 0, no_deadline}, t0);
  s.push(q, {4, 1, 20, 0, no_deadline}, t0);
  auto b = s.next(t0);
  CHECK(tickets(b) == std::vector<std::uint64_t>{1, 2});
  CHECK(b->items == 6);
  s.finished(q);
  CHECK(tickets(s.next(t0)) == std::vector<std::uint64_t>{3});  // 3 + 20 > 7
  s.finished(q);
  b = s.next(t0);
  CHECK(tickets(b) == std::vector<std::uint64_t>{4});  // alone over the limit: it still runs
  CHECK(b->items == 20);
}

TEST_CASE("batches are formed across peers: a newcomer waits for one batch at most, whatever max_batch") {
  for (std::uint32_t max_batch : {1u, 2u, 8u, 64u}) {
    CAPTURE(max_batch);
    scheduler s;
    const auto q = s.add_queue(batching(max_batch));
    push_n(s, q, /*peer*/ 1, 1, 200, t0);  // a burst
    REQUIRE(s.next(t0));                   // running
    push_n(s, q, /*peer*/ 2, 1000, 1, t0 + 1us);
    // The newcomer joins the end of the turns: the burst's peer has one more turn before it. So
    // it runs in the next batch (second in it), or with max_batch 1 in the one after.
    int batches_before = 0;
    for (;; ++batches_before) {
      s.finished(q);
      const auto b = tickets(s.next(t0 + 2us));
      if (std::find(b.begin(), b.end(), 1000u) != b.end()) break;
    }
    CHECK(batches_before == (max_batch == 1 ? 1 : 0));
  }
  SECTION("within a batch, one request of each peer in turn") {
    scheduler s;
    const auto q = s.add_queue(batching(6));
    push_n(s, q, 1, 10, 4, t0);
    push_n(s, q, 2, 20, 4, t0);
    push_n(s, q, 3, 30, 1, t0);
    CHECK(tickets(s.next(t0)) == std::vector<std::uint64_t>{10, 20, 30, 11, 21, 12});
  }
}

TEST_CASE("priorities: the highest level is batched first; equal levels stay fair") {
  scheduler s;
  auto rules = batching(4);
  rules.default_priority = 2;
  const auto q = s.add_queue(rules);
  push_n(s, q, 1, 1, 6, t0);             // default: level 2
  push_n(s, q, 2, 100, 1, t0 + 1us, 1);  // level 1, later
  push_n(s, q, 3, 200, 1, t0 + 2us, 3);  // level 3
  CHECK(tickets(s.next(t0 + 3us)) == std::vector<std::uint64_t>{100, 1, 2, 3});
  s.finished(q);
  CHECK(tickets(s.next(t0 + 3us)) == std::vector<std::uint64_t>{4, 5, 6, 200});  // lower levels fill the rest

  SECTION("across queues: the best priority first, then the oldest request") {
    scheduler m(1);  // one thread for all three
    const auto a = m.add_queue(batching(1));
    const auto b = m.add_queue(batching(1));
    const auto c = m.add_queue(batching(1));
    push_n(m, a, 1, 1, 1, t0, 2);
    push_n(m, b, 1, 2, 1, t0 + 1us, 2);
    push_n(m, c, 1, 3, 1, t0 + 2us, 1);
    CHECK(tickets(m.next(t0 + 3us)) == std::vector<std::uint64_t>{3});
    CHECK_FALSE(m.next(t0 + 3us));  // the budget of one thread is used
    m.finished(c);
    CHECK(tickets(m.next(t0 + 3us)) == std::vector<std::uint64_t>{1});
    m.finished(a);
    CHECK(tickets(m.next(t0 + 3us)) == std::vector<std::uint64_t>{2});
  }
}

TEST_CASE("no queue blocks another: instances per queue, a shared budget") {
  scheduler s(3);
  auto slow_rules = batching(1);
  slow_rules.instances = 2;
  const auto slow = s.add_queue(slow_rules);
  const auto cheap = s.add_queue(batching(1));
  push_n(s, slow, 1, 1, 10, t0);
  CHECK(tickets(s.next(t0)) == std::vector<std::uint64_t>{1});
  CHECK(tickets(s.next(t0)) == std::vector<std::uint64_t>{2});
  CHECK_FALSE(s.next(t0));  // the slow queue's two instances run; the third thread stays free
  push_n(s, cheap, 2, 100, 2, t0 + 1s);
  auto b = s.next(t0 + 1s);
  REQUIRE(b);
  CHECK(b->queue == cheap);
  CHECK_FALSE(s.next(t0 + 1s));  // the cheap queue has one instance, and the budget is used
  CHECK(s.running() == 3);
  CHECK(s.running(slow) == 2);
}

TEST_CASE("a queue at max_queue answers busy and queues nothing") {
  scheduler s;
  auto rules = batching(1);
  rules.max_queue = 2;
  const auto q = s.add_queue(rules);
  CHECK(s.push(q, {1, 1, 1, 0, no_deadline}, t0) == scheduler::admission::queued);
  CHECK(s.push(q, {2, 2, 1, 0, no_deadline}, t0) == scheduler::admission::queued);
  CHECK(s.push(q, {3, 3, 1, 0, no_deadline}, t0) == scheduler::admission::busy);
  CHECK(s.waiting(q) == 2);
  REQUIRE(s.next(t0));  // one leaves the queue: room for one more
  CHECK(s.push(q, {4, 3, 1, 0, no_deadline}, t0) == scheduler::admission::queued);
  CHECK(s.push(q, {5, 3, 1, 0, no_deadline}, t0) == scheduler::admission::busy);
}

TEST_CASE("a request whose deadline passed before it starts is expired, never batched") {
  scheduler s;
  const auto q = s.add_queue(batching(8));
  s.push(q, {1, 1, 1, 0, t0 + 10ms}, t0);
  s.push(q, {2, 2, 1, 0, t0 + 30ms}, t0);
  s.push(q, {3, 3, 1, 0, no_deadline}, t0);
  CHECK(s.wake_by() == t0 + 10ms);
  CHECK(s.take_expired(t0 + 9ms).empty());
  // At 20 ms the first has expired: the batch holds the two others.
  CHECK(tickets(s.next(t0 + 20ms)) == std::vector<std::uint64_t>{2, 3});
  auto gone = s.take_expired(t0 + 20ms);
  REQUIRE(gone.size() == 1);
  CHECK(gone[0].ticket == 1);
  CHECK(s.take_expired(t0 + 30ms).empty());  // the 30 ms one is running, not waiting
  CHECK(s.wake_by() == no_deadline);
  SECTION("expired while the executor is busy") {
    s.push(q, {4, 1, 1, 0, t0 + 25ms}, t0 + 21ms);
    CHECK(s.wake_by() == t0 + 25ms);
    gone = s.take_expired(t0 + 25ms);
    REQUIRE(gone.size() == 1);
    CHECK(gone[0].ticket == 4);
    s.finished(q);
    CHECK_FALSE(s.next(t0 + 25ms));
  }
}

TEST_CASE("a peer's waiting requests can be taken out") {
  scheduler s;
  const auto q = s.add_queue(batching(4, {}, 1s));
  push_n(s, q, 1, 1, 3, t0);
  push_n(s, q, 2, 10, 2, t0);
  auto gone = s.remove_peer(1);
  std::sort(gone.begin(), gone.end());
  CHECK(gone == std::vector<std::uint64_t>{1, 2, 3});
  CHECK(s.waiting() == 2);
  CHECK(tickets(s.next(t0 + 1s)) == std::vector<std::uint64_t>{10, 11});
  CHECK(s.remove_peer(1).empty());
}

TEST_CASE("bad rules are refused with the reason") {
  scheduler s;
  CHECK_THROWS_WITH(s.add_queue(batching(4, {5})), "preferred batch size 5 is outside 1..max_batch (4)");
  CHECK_THROWS_WITH(s.add_queue(batching(4, {0})), "preferred batch size 0 is outside 1..max_batch (4)");
  auto r = batching(1);
  r.default_priority = 0;
  CHECK_THROWS_AS(s.add_queue(r), std::invalid_argument);
  CHECK(s.add_queue(batching(0, {1000})) == 0);  // no limit: any preferred size
}
