// The transmitter's units on their own: the choice of receiver and the fallback pool; and the
// transport values refused where they do not fit.
#include "src/transmitter/fallback_pool.hpp"
#include "src/transmitter/routing.hpp"

#include <offload/grpc.hpp>
#include <offload/mpi.hpp>
#include <offload/receiver.hpp>

#include <catch2/catch.hpp>

#include <condition_variable>
#include <mutex>

using namespace offload;
using detail::receiver_link;

namespace {
std::vector<receiver_link> links(std::initializer_list<std::uint32_t> outstanding) {
  std::vector<receiver_link> out;
  for (auto n : outstanding) {
    receiver_link l;
    l.peer = int(out.size());
    l.accepted = true;
    l.credits = 2;
    l.outstanding = n;
    out.push_back(l);
  }
  return out;
}
}  // namespace

TEST_CASE("round robin takes the next receiver with a free credit") {
  auto ls = links({0, 2, 0});
  std::size_t next = 0;
  CHECK(detail::choose_receiver(ls, routing::round_robin, next) == 0);
  CHECK(next == 1);
  CHECK(detail::choose_receiver(ls, routing::round_robin, next) == 2);  // 1 is out of credits
  CHECK(next == 0);
  ls[0].suspect = true;
  CHECK(detail::choose_receiver(ls, routing::round_robin, next) == 2);
  ls[2].goodbye_sent = true;
  CHECK(detail::choose_receiver(ls, routing::round_robin, next) == -1);
  CHECK(detail::any_takes_requests(ls));  // 1 is in session, only out of credits
  ls[1].accepted = false;
  CHECK_FALSE(detail::any_takes_requests(ls));
}

TEST_CASE("least outstanding takes the emptiest receiver, the first of equals from next on") {
  auto ls = links({1, 0, 1, 0});
  std::size_t next = 0;
  CHECK(detail::choose_receiver(ls, routing::least_outstanding, next) == 1);
  CHECK(next == 2);
  CHECK(detail::choose_receiver(ls, routing::least_outstanding, next) == 3);
  ls[1].outstanding = 2;
  ls[3].outstanding = 2;
  next = 1;
  CHECK(detail::choose_receiver(ls, routing::least_outstanding, next) == 2);
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
