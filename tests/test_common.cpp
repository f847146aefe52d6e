#include "src/base/work_queue.hpp"
#include "src/emulation/link_schedule.hpp"
#include "src/progress/engine.hpp"
#include "src/transport/transport.hpp"

#include <offload/emulation.hpp>
#include <offload/host_pool.hpp>
#include <offload/log.hpp>
#include <offload/transmitter.hpp>

#include <spdlog/sinks/ostream_sink.h>

#include <catch2/catch.hpp>

#include <atomic>
#include <cstdint>
#include <cstring>
#include <deque>
#include <future>
#include <mutex>
#include <set>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <vector>

#include <sched.h>
#include <sys/resource.h>

using namespace offload;

namespace {
long minor_faults() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_minflt;
}
}  // namespace

TEST_CASE("buffers are 64-byte aligned and keep their storage within capacity") {
  buffer b(100);
  CHECK(reinterpret_cast<std::uintptr_t>(b.data()) % 64 == 0);
  CHECK(b.size() == 100);
  CHECK(b.capacity() >= 100);
  const auto* p = b.data();
  b.resize(10);
  CHECK(b.data() == p);
  b.resize(b.capacity());
  CHECK(b.data() == p);
  b.resize(b.capacity() + 1);
  CHECK(b.size() == b.capacity() - 63);  // reallocated, capacity rounded to 64
}

TEST_CASE("the host pool's size classes: four per power of two from 4 KiB, whole pages") {
  CHECK(host_pool::block_bytes(1) == 4096);
  CHECK(host_pool::block_bytes(4096) == 4096);
  CHECK(host_pool::block_bytes(4097) == 8192);  // quarter steps under a page round to pages
  CHECK(host_pool::block_bytes(12288) == 12288);
  CHECK(host_pool::block_bytes(12289) == 16384);
  CHECK(host_pool::block_bytes(16385) == 20480);                   // 16 KiB + a quarter
  CHECK(host_pool::block_bytes((1 << 20) + 64) == (5 << 20) / 4);  // 1 MiB + a header: 1.25 MiB
  CHECK(host_pool::block_bytes((16 << 20) + 64) == 20 << 20);      // 16 MiB + a header: 20 MiB
  for (std::size_t size = 1; size < (std::size_t{64} << 20); size = size * 9 / 8 + 1) {
    const auto b = host_pool::block_bytes(size);
    INFO("size " << size << " block " << b);
    CHECK(b >= size);
    CHECK(b % 4096 == 0);
    CHECK((size <= 16384 || b <= size + size / 4));  // at most a quarter more
    CHECK(host_pool::block_bytes(b) == b);           // a block's size is its own class
  }
}

TEST_CASE("the host pool reuses a block of the same class, the most recent first") {
  auto pool = host_pool::make();
  auto a = pool->acquire(5000);
  CHECK(a.size() == 5000);
  CHECK(a.capacity() == 8192);
  CHECK(reinterpret_cast<std::uintptr_t>(a.data()) % 4096 == 0);
  const auto* p = a.data();
  { buffer drop = std::move(a); }  // back to the pool
  auto b = pool->acquire(7000);    // same class: the same storage
  CHECK(b.data() == p);
  auto c = pool->acquire(100);
  CHECK(c.capacity() == 4096);
  auto d = pool->acquire(8000);
  CHECK(d.capacity() == 8192);
  CHECK(d.data() != b.data());
  const auto s = pool->stats();
  CHECK(s.hits == 1);
  CHECK(s.misses == 3);
  CHECK(s.bytes_in_use == 8192 + 4096 + 8192);
  CHECK(s.bytes_cached == 0);
}

TEST_CASE("a pooled buffer returns to its pool when it dies, wherever that is") {
  auto pool = host_pool::make();
  const std::byte* p = nullptr;
  {
    auto a = pool->acquire(100000);
    p = a.data();
    buffer moved = std::move(a);  // ownership travels (to a result, say) ...
  }                               // ... and the block comes home when that owner dies
  CHECK(pool->stats().bytes_cached == host_pool::block_bytes(100000));
  auto b = pool->acquire(110000);  // the same class (98304, 114688]
  CHECK(b.data() == p);
  b.resize(b.capacity() + 1);  // grows out of its block: the block goes home, the new one is plain
  auto c = pool->acquire(110000);
  CHECK(c.data() == p);
}

TEST_CASE("the host pool keeps at most max_cached_bytes of free blocks and releases the rest") {
  host_pool_config cfg;
  cfg.max_cached_bytes = 3 * 65536;
  auto pool = host_pool::make(cfg);
  {
    std::vector<buffer> held;
    for (int i = 0; i < 5; ++i) held.push_back(pool->acquire(65536));
    CHECK(pool->stats().bytes_in_use == 5 * 65536);
  }  // five come back: three are kept, two released
  auto s = pool->stats();
  CHECK(s.bytes_cached == 3 * 65536);
  CHECK(s.bytes_in_use == 0);
  CHECK(s.releases == 2);
  std::vector<buffer> again;
  for (int i = 0; i < 4; ++i) again.push_back(pool->acquire(60000));
  s = pool->stats();
  CHECK(s.hits == 3);
  CHECK(s.misses == 6);
  CHECK(s.bytes_cached == 0);
  again.clear();
  pool->trim();
  s = pool->stats();
  CHECK(s.bytes_cached == 0);
  CHECK(s.releases == 2 + 4);
}

TEST_CASE("a new block is touched when made: writing it takes no page faults") {
  auto pool = host_pool::make();
  auto b = pool->acquire(std::size_t{8} << 20);  // 2048 pages
  const auto faults_before = minor_faults();
  std::memset(b.data(), 1, b.size());
  const auto faults = minor_faults() - faults_before;
  INFO("minor faults writing a pre-faulted 8 MiB block: " << faults);
#if defined(__SANITIZE_THREAD__)
  // TSan's shadow (four times the memory, touched word by word) faults on its own.
  WARN("ThreadSanitizer: its shadow memory faults when the block is written (" << faults << "); not checked");
#else
  CHECK(faults < 20);  // none expected; a stray fault elsewhere in the process is not the block's
#endif

  host_pool_config lazy;
  lazy.prefault = false;
  auto untouched = host_pool::make(lazy)->acquire(std::size_t{8} << 20);
  const auto lazy_before = minor_faults();
  std::memset(untouched.data(), 1, untouched.size());
  INFO("the same without pre-faulting (the check above can fail)");
  CHECK(minor_faults() - lazy_before >= 4);  // at least one per huge page, else one per page
}

namespace {
struct counting_pinner final : host_pool::pinner {
  std::mutex m;
  std::set<const std::byte*> pinned;
  int pins = 0, unpins = 0;
  bool pin(std::byte* block, std::size_t bytes) noexcept override {
    std::lock_guard lock(m);
    CHECK(reinterpret_cast<std::uintptr_t>(block) % 4096 == 0);
    CHECK(bytes % 4096 == 0);
    ++pins;
    pinned.insert(block);
    return true;
  }
  void unpin(std::byte* block) noexcept override {
    std::lock_guard lock(m);
    ++unpins;
    CHECK(pinned.erase(block) == 1);
  }
};
}  // namespace

TEST_CASE("a pinner pins cached and new blocks, and unpins what the pool releases") {
  host_pool_config cfg;
  cfg.max_cached_bytes = 8192;
  auto pool = host_pool::make(cfg);
  auto in_use = pool->acquire(4096);
  { auto cached = pool->acquire(8192); }  // one cached block
  auto pinner = std::make_shared<counting_pinner>();
  pool->set_pinner(pinner);
  CHECK(pinner->pins == 1);  // the cached block; the one in use stays pageable
  CHECK(pool->stats().bytes_pinned == 8192);
  auto fresh = pool->acquire(65536);  // made pinned
  CHECK(pinner->pins == 2);
  CHECK(pinner->pinned.contains(fresh.data()));
  CHECK_FALSE(pinner->pinned.contains(in_use.data()));
  { buffer drop = std::move(fresh); }  // over the cache bound: released and unpinned
  CHECK(pinner->unpins == 1);
  CHECK(pool->stats().bytes_pinned == 8192);
  pool->trim();
  CHECK(pinner->unpins == 2);
  CHECK(pinner->pinned.empty());
  CHECK(pool->stats().bytes_pinned == 0);
}

TEST_CASE("the host pool under threads: every block accounted for") {
  host_pool_config cfg;
  cfg.max_cached_bytes = std::size_t{4} << 20;
  auto pool = host_pool::make(cfg);
  constexpr int threads = 4, rounds = 2000;
  std::vector<std::thread> ts;
  for (int t = 0; t < threads; ++t)
    ts.emplace_back([&, t] {
      std::vector<buffer> held;
      for (int i = 0; i < rounds; ++i) {
        held.push_back(pool->acquire(std::size_t(1000 + (i * 7919 + t * 104729) % 300000)));
        held.back().data()[0] = std::byte(i);
        if (held.size() > 8) held.erase(held.begin() + (i % 8));  // returned out of order
      }
    });
  for (auto& t : ts) t.join();
  const auto s = pool->stats();
  CHECK(s.hits + s.misses == std::uint64_t(threads * rounds));
  CHECK(s.bytes_in_use == 0);
  CHECK(s.bytes_cached <= cfg.max_cached_bytes);
}

TEST_CASE("work_queue hands out every item once and ends after close") {
  detail::work_queue<int> q;
  std::atomic<long> sum{0};
  std::atomic<int> count{0};
  std::vector<std::thread> consumers;
  for (int t = 0; t < 4; ++t)
    consumers.emplace_back([&] {
      while (auto v = q.pop()) {
        sum += *v;
        ++count;
      }
    });
  for (int i = 1; i <= 1000; ++i) q.push(i);
  q.close();
  for (auto& t : consumers) t.join();
  CHECK(count == 1000);
  CHECK(sum == 500500);
  CHECK_FALSE(q.pop().has_value());
}

TEST_CASE("an emulated link delays by its latency, keeps order and serialises at its bandwidth") {
  using namespace std::chrono_literals;
  SECTION("latency only: each message leaves exactly `latency` after it was handed over") {
    detail::link_schedule s({5ms, 0ns, 0});
    CHECK(s.active());
    CHECK(s.release(1, 8, 1'000) == 5'001'000);
    CHECK(s.release(1, 1 << 20, 2'000) == 5'002'000);  // size does not matter without a bandwidth
    CHECK(s.release(2, 8, 0) == 5'000'000);
  }
  SECTION("jitter varies the delay within +-jitter but never reorders a link") {
    detail::link_schedule s({1ms, 500us, 0}, 42);
    std::int64_t last = 0;
    bool varied = false;
    for (std::int64_t t = 0; t < 1000; ++t) {
      const auto r = s.release(3, 8, t * 1000);  // one message a microsecond
      CHECK(r >= last);
      CHECK(r >= t * 1000 + 500'000);
      CHECK(r <= std::max(last, t * 1000 + 1'500'000));
      varied = varied || (last != 0 && r - last != 1000);
      last = r;
    }
    CHECK(varied);
  }
  SECTION("bandwidth: a message waits for the ones before it on the same link only") {
    detail::link_schedule s({0ns, 0ns, 8e9});  // 8 Gbit/s: 1 byte per ns
    CHECK(s.release(1, 1'000'000, 0) == 1'000'000);
    CHECK(s.release(1, 1'000'000, 0) == 2'000'000);     // queued behind the first
    CHECK(s.release(2, 1'000'000, 0) == 1'000'000);     // another link is free
    CHECK(s.release(1, 1000, 5'000'000) == 5'001'000);  // the wire was idle again
  }
  SECTION("off by default") {
    detail::link_schedule s({});
    CHECK_FALSE(s.active());
  }
}

namespace {
/// An endpoint that records what it is handed (sends complete at the next progress_sends) and
/// hands out what is put in `arriving`.
class recording_endpoint final : public detail::endpoint {
 public:
  explicit recording_endpoint(host_pool& p) : endpoint(p, 1 << 20) {}
  std::deque<detail::incoming> arriving;
  std::vector<std::pair<int, std::uint64_t>> posted;  // destination, bytes: in the order handed over
  std::size_t in_flight = 0;
  std::optional<detail::incoming> receive() override {
    if (arriving.empty()) return std::nullopt;
    auto in = std::move(arriving.front());
    arriving.pop_front();
    return in;
  }
  std::string describe(int peer) const override { return "peer " + std::to_string(peer); }

 protected:
  void post(detail::outgoing o) override {
    posted.emplace_back(o.dest, o.m.total_size);
    ++in_flight;
  }
  bool complete_sends() override { return std::exchange(in_flight, 0) > 0; }
  std::size_t posted_sends() const noexcept override { return in_flight; }
  std::size_t abandon_posted(int) override { return 0; }
};

class recording_transport final : public detail::transport_impl {
 public:
  mutable recording_endpoint* last = nullptr;
  std::unique_ptr<detail::endpoint> connect(runtime&, const detail::endpoint_settings& s,
                                            std::vector<int>& receivers) const override {
    auto ep = std::make_unique<recording_endpoint>(s.pool);
    last = ep.get();
    receivers = {0, 1};
    return ep;
  }
  listening listen(runtime& rt, const detail::endpoint_settings& s) const override {
    std::vector<int> unused;
    return {connect(rt, s, unused), "recording receiver"};
  }
};

/// Polls `done` until it holds, at most 10 s (a bound on a broken build, not a timing check).
template <class F> bool eventually(F done) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!done())
    if (std::chrono::steady_clock::now() > until) return false;
  return true;
}
}  // namespace

TEST_CASE(
    "the emulated link wraps another transport's endpoint: sends wait for their release, receives for the site link") {
  using namespace std::chrono_literals;
  progress_options no_mpi;
  no_mpi.mpi = false;
  runtime rt(no_mpi);
  auto pool = host_pool::make();
  const auto inner = std::make_shared<recording_transport>();
  std::vector<int> receivers;
  SECTION("a send is held until latency after it was handed over; order kept; abandon drops held ones") {
    const auto far = emulated_link(transport(inner), {std::chrono::hours(1), 0ns, 0});
    auto ep = far.impl().connect(rt, {*pool, 1 << 20}, receivers);
    CHECK(receivers == std::vector<int>{0, 1});  // the inner transport's
    ep->send(1, buffer(100));
    ep->send(1, buffer(200));
    ep->send(0, buffer(300));
    ep->progress_sends();
    CHECK(inner->last->posted.empty());
    CHECK(ep->pending_sends() == 3);
    CHECK(ep->next_release() > std::chrono::steady_clock::now() + 59min);
    CHECK(ep->abandon(1) == 2);
    CHECK(ep->pending_sends() == 1);
    const auto near = emulated_link(transport(inner), {2ms, 0ns, 0});
    auto ep2 = near.impl().connect(rt, {*pool, 1 << 20}, receivers);
    const auto sent = std::chrono::steady_clock::now();
    ep2->send(1, buffer(100));
    ep2->send(1, buffer(200));
    REQUIRE(eventually([&] {
      ep2->progress_sends();
      return inner->last->posted.size() == 2;
    }));
    CHECK(std::chrono::steady_clock::now() - sent >= 2ms);
    CHECK(inner->last->posted == std::vector<std::pair<int, std::uint64_t>>{{1, 100}, {1, 200}});
    ep2->progress_sends();  // the inner endpoint completes them
    CHECK(ep2->pending_sends() == 0);
  }
  SECTION("received messages cross the site link one after another, a closed connection behind its messages") {
    auto arrive = [&](std::uint64_t size, bool closed) {  // at the inner endpoint made last
      detail::incoming in;
      in.source = 0;
      in.size = size;
      in.closed = closed;
      inner->last->arriving.push_back(std::move(in));
    };
    const auto slow = emulated_link(transport(inner), {}, 8.0);  // 1 byte per second
    auto ep = slow.impl().connect(rt, {*pool, 1 << 20}, receivers);
    arrive(50, false);
    CHECK_FALSE(ep->receive().has_value());
    CHECK(ep->next_release() > std::chrono::steady_clock::now() + 40s);
    const auto fast = emulated_link(transport(inner), {}, 8e4);  // 10 bytes per millisecond: 5 ms
    auto ep2 = fast.impl().connect(rt, {*pool, 1 << 20}, receivers);
    const auto t0 = std::chrono::steady_clock::now();
    arrive(50, false);
    arrive(0, true);
    std::vector<detail::incoming> got;
    REQUIRE(eventually([&] {
      if (auto in = ep2->receive()) got.push_back(std::move(*in));
      return got.size() == 2;
    }));
    CHECK(std::chrono::steady_clock::now() - t0 >= 5ms);
    CHECK(got[0].size == 50);
    CHECK(got[1].closed);
  }
  SECTION("bad rates are refused") {
    CHECK_THROWS_WITH(emulated_link(transport(inner), {}, -1), Catch::Contains("site link"));
    CHECK_THROWS_WITH(emulated_link(transport(inner), {-1ms, 0ns, 0}), Catch::Contains("latency"));
  }
}

namespace {
/// A client that counts its polls and asks to be woken 1 ms from each poll (an emulated send).
struct counting_client final : progress_client {
  std::atomic<int> polls{0};
  std::atomic<std::chrono::steady_clock::time_point> due{std::chrono::steady_clock::time_point::max()};
  bool progress() override {
    ++polls;
    return false;
  }
  std::chrono::steady_clock::time_point wake_by() const override { return due.load(); }
};
}  // namespace

TEST_CASE("the progress engine runs its setup, tasks and clients on its own thread, without MPI") {
  progress_options o;
  o.spin = o.yield = std::chrono::microseconds(0);  // sleep at once when idle
  o.max_sleep = std::chrono::milliseconds(50);
  SECTION("a setup that throws: start() rethrows it and no thread is left") {
    detail::progress_engine e(o);
    CHECK_THROWS_WITH(e.start({[] { throw std::runtime_error("no MPI here"); }, {}, {}}), "no MPI here");
  }
  SECTION("tasks run in order on the thread; clients are polled until removed; teardown runs last") {
    std::atomic<bool> torn_down{false};
    counting_client c;
    {
      detail::progress_engine e(o);
      std::thread::id setup_on;
      e.start({[&] { setup_on = std::this_thread::get_id(); }, [&] { torn_down = true; }, {}});
      CHECK_FALSE(e.on_thread());
      std::promise<std::vector<int>> order;
      auto seen = std::make_shared<std::vector<int>>();
      std::promise<bool> on_thread;
      e.post([&, seen] {
        seen->push_back(1);
        on_thread.set_value(e.on_thread() && std::this_thread::get_id() == setup_on);
      });
      e.post([&, seen] {
        seen->push_back(2);
        order.set_value(*seen);
      });
      CHECK(on_thread.get_future().get());
      CHECK(order.get_future().get() == std::vector<int>{1, 2});
      std::promise<void> added;
      e.post([&] {
        e.add(c);
        added.set_value();
      });
      added.get_future().get();
      // An idle engine sleeps up to max_sleep between polls; a client due sooner is polled sooner.
      c.due = std::chrono::steady_clock::now() + std::chrono::milliseconds(1);
      const int before = c.polls;
      while (c.polls < before + 3) std::this_thread::yield();
      std::promise<void> removed;
      e.post([&] {
        e.remove(c);
        removed.set_value();
      });
      removed.get_future().get();
      const int after = c.polls;
      e.wake();
      std::promise<void> ran;
      e.post([&] { ran.set_value(); });
      ran.get_future().get();
      CHECK(c.polls == after);  // no longer polled
      CHECK_FALSE(torn_down);
    }
    CHECK(torn_down);
  }
}

TEST_CASE("a transmitter whose receivers never answer starts anyway, falls back, and logs why where it is told") {
  using namespace std::chrono_literals;
  std::ostringstream log;
  auto capture = std::make_shared<spdlog::logger>("capture", std::make_shared<spdlog::sinks::ostream_sink_mt>(log));
  capture->set_pattern("%l %v");
  offload::set_logger(capture);
  const auto logged = [&](const std::string& text) {
    capture->flush();
    INFO(log.str());
    return log.str().find(text) != std::string::npos;
  };
  // The caller on one core: the progress thread (it inherits the caller's affinity) shares it.
  cpu_set_t all, one;
  REQUIRE(sched_getaffinity(0, sizeof all, &all) == 0);
  CPU_ZERO(&one);
  for (int c = 0; c < CPU_SETSIZE; ++c)
    if (CPU_ISSET(c, &all)) {
      CPU_SET(c, &one);
      break;
    }
  REQUIRE(sched_setaffinity(0, sizeof one, &one) == 0);
  struct restore {
    cpu_set_t& all;
    ~restore() { sched_setaffinity(0, sizeof all, &all); }
  } restored{all};
  progress_options no_mpi;
  no_mpi.mpi = false;
  runtime rt(no_mpi);
  const auto inner = std::make_shared<recording_transport>();  // receivers 0 and 1, which never answer
  const auto& kernels = kernel_registry::builtin();
  transmitter_config cfg;
  cfg.handshake_timeout = 50ms;
  SECTION("by default: it starts, its requests run locally (no_receiver), and it says goodbye to both") {
    transmitter tx(rt, kernels, transport(inner), cfg);
    CHECK(logged("warning rank 0: the progress thread and this thread are bound to the same single core"));
    CHECK(
        logged("warning transmitter rank 0: receiver peer 0 did not answer the handshake within 50 ms: its requests go "
               "to other receivers or fall back to the local CPU until it is in session"));
    CHECK(logged("receiver peer 1 did not answer the handshake within 50 ms"));
    const auto& echo = *kernels.find("echo");
    const auto in = echo.make_inputs({7, 16, 0});
    const auto r = tx.submit("echo", product_views(in)).get();
    CHECK(r.fallback() == fallback_reason::no_receiver);
    CHECK(compare_with_cpu(echo, product_views(in), r.products()).empty());
    tx.close();
    CHECK(tx.stats().fallback_no_receiver == 1);
    // A hello to each, then a goodbye to each (not waited for): nothing else went out.
    std::vector<int> dests;
    rt.call([&] {
      for (const auto& [dest, bytes] : inner->last->posted) dests.push_back(dest);
    });
    CHECK(dests == std::vector<int>{0, 1, 0, 1});
  }
  SECTION("require_receivers: the strict start throws, naming each receiver") {
    cfg.require_receivers = true;
    CHECK_THROWS_WITH(transmitter(rt, kernels, transport(inner), cfg),
                      "receiver peer 0 did not answer the handshake within 50 ms; receiver peer 1 did not answer the "
                      "handshake within 50 ms");
  }
  offload::set_logger(nullptr);  // the default again
  CHECK(offload::logger()->name() == offload::logger_name);
}
