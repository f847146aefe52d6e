// The transmitter's units on their own: the choice of receiver and the fallback pool; and the
// transport values refused where they do not fit.
#include "src/transmitter/fallback_pool.hpp"
#include "src/transmitter/routing.hpp"

#include <offload/grpc.hpp>
#include <offload/mpi.hpp>
#include <offload/receiver.hpp>

#include <catch2/catch.hpp>

#include <unistd.h>

#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>

using namespace offload;
using detail::receiver_link;

namespace {
/// Receivers in session serving kernels 0 and 1 (kernel 1 under another id there), 2 credits each.
std::vector<receiver_link> links(std::initializer_list<std::uint32_t> outstanding) {
  std::vector<receiver_link> out;
  for (auto n : outstanding) {
    receiver_link l;
    l.peer = int(out.size());
    l.state = detail::link_state::open;
    l.kernel_ids = {0, 5};
    l.credits = 2;
    l.outstanding = n;
    out.push_back(l);
  }
  return out;
}
const detail::eligible_fn any = [](std::size_t) { return true; };
}  // namespace

TEST_CASE("round robin takes the next receiver with a free credit") {
  auto ls = links({0, 2, 0});
  std::size_t next = 0;
  CHECK(detail::choose_receiver(ls, 0, routing::round_robin, next, any) == 0);
  CHECK(next == 1);
  CHECK(detail::choose_receiver(ls, 0, routing::round_robin, next, any) == 2);  // 1 is out of credits
  CHECK(next == 0);
  ls[0].suspect = true;
  CHECK(detail::choose_receiver(ls, 0, routing::round_robin, next, any) == 2);
  ls[2].state = detail::link_state::closing;
  CHECK(detail::choose_receiver(ls, 0, routing::round_robin, next, any) == -1);
  CHECK(detail::any_takes(ls, 0, any));  // 1 is in session, only out of credits
  ls[1].state = detail::link_state::down;
  CHECK_FALSE(detail::any_takes(ls, 0, any));
}

TEST_CASE("a request goes only to receivers that serve its kernel and are eligible") {
  auto ls = links({0, 0, 0});
  ls[0].kernel_ids = {0, -1};  // receiver 0 lacks kernel 1
  std::size_t next = 0;
  CHECK(detail::choose_receiver(ls, 1, routing::round_robin, next, any) == 1);
  CHECK(detail::choose_receiver(ls, 1, routing::round_robin, next, any) == 2);
  CHECK(detail::choose_receiver(ls, 1, routing::round_robin, next, any) == 1);   // 0 skipped
  CHECK(detail::choose_receiver(ls, 2, routing::round_robin, next, any) == -1);  // nobody has kernel 2
  CHECK_FALSE(detail::any_takes(ls, 2, any));
  const detail::eligible_fn not_1 = [](std::size_t i) { return i != 1; };  // e.g. it answered busy
  next = 1;
  CHECK(detail::choose_receiver(ls, 1, routing::round_robin, next, not_1) == 2);
  ls[2].state = detail::link_state::connecting;
  CHECK_FALSE(detail::any_takes(ls, 1, not_1));
  CHECK(detail::any_takes(ls, 0, not_1));
}

TEST_CASE("least outstanding takes the emptiest receiver, the first of equals from next on") {
  auto ls = links({1, 0, 1, 0});
  std::size_t next = 0;
  CHECK(detail::choose_receiver(ls, 0, routing::least_outstanding, next, any) == 1);
  CHECK(next == 2);
  CHECK(detail::choose_receiver(ls, 0, routing::least_outstanding, next, any) == 3);
  ls[1].outstanding = 2;
  ls[3].outstanding = 2;
  next = 1;
  CHECK(detail::choose_receiver(ls, 0, routing::least_outstanding, next, any) == 2);
}

TEST_CASE("the fallback pool runs the kernel locally and delivers every result once") {
  const auto& kernels = kernel_registry::builtin();
  const kernel* k = kernels.find("synthetic");
  REQUIRE(k != nullptr);
  std::mutex m;
  std::condition_variable cv;
  std::vector<result> got;
  {
    detail::fallback_pool pool(2, [&](const detail::request_ptr&, result&& r) {
      std::lock_guard lock(m);
      got.push_back(std::move(r));
      cv.notify_all();
    });
    for (int i = 0; i < 5; ++i) {
      auto r = std::make_shared<detail::request_state>();
      r->id = std::uint64_t(i + 1);
      r->k = k;
      const auto inputs = k->make_inputs({std::uint64_t(i), 8, 3});
      r->request = encode_message({message_kind::request, r->id, 3, status::ok}, product_views(inputs));
      r->inputs = r->request.products();
      pool.push(r, i == 0 ? fallback_reason::timeout : fallback_reason::error_reply, i == 0 ? "" : "receiver 0: boom");
    }
    // A kernel that throws: its result carries the error, the others are unaffected.
    auto bad = std::make_shared<detail::request_state>();
    bad->id = 99;
    bad->k = k;
    const std::vector<product> wrong{product::make("x", std::vector<double>{1.0})};  // no "iterations"
    bad->request = encode_message({message_kind::request, 99, 3, status::ok}, product_views(wrong));
    bad->inputs = bad->request.products();
    pool.push(bad, fallback_reason::no_receiver);
    pool.close();
  }
  REQUIRE(got.size() == 6);
  std::size_t ok = 0, failed = 0;
  for (const auto& r : got) {
    if (r.ok()) {
      ++ok;
      CHECK(r.products().find("y") != nullptr);
      CHECK(r.receiver() == -1);
    } else {
      ++failed;
      CHECK(r.fallback() == fallback_reason::no_receiver);
      CHECK(r.error().find("local fallback of kernel 'synthetic' failed") != std::string::npos);
    }
  }
  CHECK(ok == 5);
  CHECK(failed == 1);
}

TEST_CASE("a transport given to the wrong side, or MPI without MPI, is refused with what to use") {
  runtime rt(progress_options{.mpi = false});  // no MPI in this process
  const auto& kernels = kernel_registry::builtin();
  const auto refused = [](auto make, const std::string& text) {
    try {
      make();
    } catch (const std::invalid_argument& e) {
      INFO(e.what());
      CHECK(std::string(e.what()).find(text) != std::string::npos);
      return;
    }
    FAIL("not refused: expected '" << text << "'");
  };
  refused(
      [&] {
        transmitter tx(rt, kernels, grpc_listen{"127.0.0.1:0", 1});
      },
      "a transmitter reaches receivers with grpc_link");
  refused([&] { receiver rx(rt, kernels, grpc_link{{"127.0.0.1:1"}}, 1); }, "a receiver listens with grpc_listen");
  refused([&] { receiver rx(rt, kernels, mpi_link{{1}}, 1); }, "leave mpi_link::ranks empty");
  refused([&] { transmitter tx(rt, kernels, mpi_link{{0}}); }, "the MPI transport needs MPI");
}

TEST_CASE("typed access to a result checks the dtype and the count, naming the product") {
  // An i64 output read as f64 was handed back unchecked (issue 27: 4616189618054758400).
  const std::vector<product> out{product::make("n", std::vector<std::int64_t>{4616189618054758400, 2})};
  const auto r = detail::result_access::remote(
      encode_message({message_kind::reply, 1, 0, status::ok}, product_views(out)), 0, request_timing{});
  CHECK(r.get<std::int64_t>("n").size() == 2);
  CHECK(r.get<std::int64_t>("n", 2)[1] == 2);
  CHECK_THROWS_AS(r.get<double>("n"), output_error);
  CHECK_THROWS_WITH(r.get<double>("n"), "output 'n': expected f64, found i64");
  CHECK_THROWS_WITH(r.get<std::int64_t>("n", 3), "output 'n': expected 3 elements of i64, found 2");
  CHECK_THROWS_WITH(r.get<std::int64_t>("m"), "result has no output 'm'");
  const auto failed = detail::result_access::local(fallback_reason::no_receiver, {}, {}, "kernel 'x': bad input");
  CHECK_THROWS_WITH(failed.get<float>("y"), "result has no output 'y' (the request failed: kernel 'x': bad input)");
}

TEST_CASE("a kernel that writes an output as another dtype than its spec is stopped") {
  const std::vector<product_spec> specs{{"y", dtype::f64, 4}};
  message_writer w(message_info{}, specs);
  CHECK(w.payload_as<double>(0).size() == 4);
  CHECK_THROWS_AS(w.payload_as<float>(0), output_error);
  CHECK_THROWS_WITH(w.payload_as<float>(0), "output 'y' is f64, written as f32");
}

TEST_CASE("products made in the transmitter's pool are submitted without a copy and their blocks reused") {
  runtime rt(progress_options{.mpi = false});
  transmitter_config cfg;
  cfg.limits.max_message_bytes = 1 << 20;
  std::unique_ptr<transmitter> tx;
  try {
    tx = std::make_unique<transmitter>(rt, kernel_registry::builtin(), grpc_link{{}}, cfg);  // no receivers
  } catch (const std::runtime_error& e) {
    WARN("skipped: no transport without MPI in this build (" << e.what() << ")");
    return;
  }
  for (int round = 0; round < 4; ++round) {
    auto p = tx->make_product<float>("x", 10000);
    CHECK(p.bytes.size() == 40000);
    auto x = p.as<float>();
    for (std::size_t i = 0; i < x.size(); ++i) x[i] = float(i) + float(round);
    std::vector<pooled_product> in;
    in.push_back(std::move(p));
    auto r = tx->submit("echo", shared_products::adopt(std::move(in))).get();  // echo on the CPU fallback
    REQUIRE(r.ok());
    CHECK(r.fallback() == fallback_reason::no_receiver);
    const auto y = r.get<float>("x", 10000);
    CHECK(y[7] == 7.0f + float(round));
    CHECK(y[9999] == 9999.0f + float(round));
  }
  // The last owner (the fallback thread's request) lets go just after delivering: wait for it.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (tx->memory().bytes_in_use > 0 && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
  const auto m = tx->memory();
  INFO("hits " << m.hits << ", misses " << m.misses << ", cached " << m.bytes_cached);
  CHECK(m.bytes_in_use == 0);
  CHECK(m.bytes_cached >= host_pool::block_bytes(40000));
  CHECK(m.hits + m.misses >= 4);  // the products, and the fallback's outputs
  auto again = tx->make_product<float>("x", 10000);
  CHECK(tx->memory().hits == m.hits + 1);  // a block of an earlier event, used again
  CHECK_THROWS_AS(again.as<double>(), input_error);
  CHECK_THROWS_WITH(tx->make_product<float>("big", 1 << 20),
                    "product 'big' of 4194304 bytes is over the maximum message size (1048576)");
}

namespace {
std::string tokens_file(const std::string& text) {
  static int n = 0;
  const auto path = std::filesystem::temp_directory_path() /
                    ("offload_tokens_" + std::to_string(::getpid()) + "_" + std::to_string(n++));
  std::ofstream(path) << text;
  return path.string();
}
std::string load_error(const std::string& text) {
  const auto path = tokens_file(text);
  try {
    offload::client_tokens::load(path);
  } catch (const std::invalid_argument& e) {
    std::filesystem::remove(path);
    return e.what();
  }
  std::filesystem::remove(path);
  return "loaded";
}
}  // namespace

TEST_CASE("a tokens file: clients, limits, comments; every mistake named with its line", "[security]") {
  const auto path = tokens_file(
      "# the clients of a site\n\nalice 0123456789abcdef0123  max_inflight=4 max_priority=2\n"
      "  bob fedcba9876543210fedc max_work=1e9   # batch jobs\n");
  auto t = offload::client_tokens::load(path);
  CHECK(t->size() == 2);
  auto a = t->find("0123456789abcdef0123");
  REQUIRE(a);
  CHECK(a->name == "alice");
  CHECK(a->limits.max_inflight == 4);
  CHECK(a->limits.max_priority == 2);
  CHECK(a->limits.max_work == 0);
  auto b = t->find("fedcba9876543210fedc");
  REQUIRE(b);
  CHECK(b->name == "bob");
  CHECK(b->limits.max_work == 1e9);
  CHECK_FALSE(t->find("0123456789abcdef012"));    // a prefix
  CHECK_FALSE(t->find("0123456789abcdef01234"));  // longer
  CHECK_FALSE(t->find(""));

  // reload: the new table, or on an error the old one kept
  std::ofstream(path) << "carol cccccccccccccccccccc\n";
  t->reload();
  CHECK(t->size() == 1);
  CHECK_FALSE(t->find("0123456789abcdef0123"));
  CHECK(t->find("cccccccccccccccccccc")->name == "carol");
  std::ofstream(path) << "dave short\n";
  CHECK_THROWS_WITH(t->reload(), Catch::Contains(":1: client 'dave': a token of 5 characters is too short"));
  CHECK(t->find("cccccccccccccccccccc")->name == "carol");
  std::filesystem::remove(path);

  CHECK_THAT(load_error("alice\n"), Catch::Contains(":1: client 'alice' has no token"));
  CHECK_THAT(load_error("a 0123456789abcdef\na 1123456789abcdef\n"), Catch::Contains(":2: client 'a' is named twice"));
  CHECK_THAT(load_error("a 0123456789abcdef\nb 0123456789abcdef\n"),
             Catch::Contains(":2: client 'b' has the token of client 'a'"));
  CHECK_THAT(load_error("a 0123456789abcdef max_inflight=0\n"),
             Catch::Contains(":1: max_inflight=0 is not a number in 1..1073741824"));
  CHECK_THAT(load_error("a 0123456789abcdef max_work=lots\n"), Catch::Contains(":1: max_work=lots is not a number"));
  CHECK_THAT(load_error("a 0123456789abcdef speed=9\n"),
             Catch::Contains("'speed=9' is not one of max_inflight=N, max_work=FLOPS, max_priority=P"));
  CHECK_THAT(load_error("# nobody\n"), Catch::Contains("no client in it"));
  CHECK_THROWS_WITH(offload::client_tokens::load("/nonexistent/tokens"), Catch::Contains("cannot be read"));
}

TEST_CASE("plaintext is for loopback addresses only", "[security]") {
  for (const char* a : {"127.0.0.1:7000", "127.3.4.5:0", "localhost:80", "[::1]:7000", "unix:/tmp/s"})
    CHECK(offload::loopback_address(a));
  for (const char* a : {"0.0.0.0:7000", "[::]:7000", "10.0.0.1:7000", "example.org:443", "128.0.0.1:1"})
    CHECK_FALSE(offload::loopback_address(a));
  offload::server_security s;
  CHECK(s.describe() == "plaintext");
  s.tls_cert = "c";
  CHECK(s.describe() == "TLS");
  s.tls_client_ca = "ca";
  CHECK(s.describe() == "mutual TLS");
}
