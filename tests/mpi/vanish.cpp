// A transmitter that vanishes without goodbye: rank 2 says hello, sends four 1 MiB echo
// requests, then neither reads its replies nor sends anything for three idle timeouts. The
// receiver (rank 0, idle timeout 1 s) must drop it and give up its replies, keep serving the
// honest transmitter (rank 1), answer rank 2's next request with no_handshake, and serve it
// again after a new hello. Rank 3 is a real transmitter whose progress thread is held for two
// idle timeouts (no keepalives): it is dropped too, and must then learn that from the
// no_handshake error answering its next request or keepalive (a fallback, and the session
// counted as lost) and send that receiver nothing more. The receiver ends after four sessions: rank 1's, rank 2's two
// and rank 3's. Run with 4 ranks.
#include <offload/mpi.hpp>
#include <offload/receiver.hpp>
#include <offload/runtime.hpp>
#include <offload/transmitter.hpp>

#include "finish.hpp"
#include "raw.hpp"
#include "src/session/handshake.hpp"

#include <chrono>
#include <thread>

using namespace offload;

namespace {

constexpr auto idle_timeout = std::chrono::milliseconds(1000);
constexpr int done_tag = 77;  // rank 3 to rank 2: "my checks are done"

void held(runtime& rt, const kernel_registry& kernels) {
  transmitter tx(rt, kernels, mpi_link{{0}});
  const auto& echo = *kernels.find("echo");
  const auto in = echo.make_inputs({1, 64, 0});
  auto first = tx.submit("echo", product_views(in)).get();
  EXPECT(first.ok() && first.receiver() == 0, "first request not served remotely");
  // Hold the progress thread: no keepalive goes out, and the receiver drops this transmitter.
  rt.call([] { std::this_thread::sleep_for(2 * idle_timeout); });
  // It learns of the drop from the error answering whichever it sends first once released: this
  // request (fallback error_reply), or a keepalive already due (then the request finds no
  // receiver left: no_receiver).
  auto refused = tx.submit("echo", product_views(in)).get();
  EXPECT(refused.ok() &&
             (refused.fallback() == fallback_reason::error_reply || refused.fallback() == fallback_reason::no_receiver),
         "after the drop: fallback %s", std::string(to_string(refused.fallback())).c_str());
  std::printf("held: after the drop -> %s: %s\n", std::string(to_string(refused.fallback())).c_str(),
              refused.remote_error().c_str());
  auto next = tx.submit("echo", product_views(in)).get();
  EXPECT(next.ok() && next.fallback() == fallback_reason::no_receiver, "then: fallback %s",
         std::string(to_string(next.fallback())).c_str());
  EXPECT(compare_with_cpu(echo, product_views(in), next.products()).empty(), "wrong fallback result");
  const auto s = tx.stats();
  EXPECT(s.sessions_lost == 1, "sessions lost: %llu", (unsigned long long)s.sessions_lost);
  std::printf("held: sessions lost %llu, fallbacks %llu (error %llu, no receiver %llu)\n",
              (unsigned long long)s.sessions_lost, (unsigned long long)s.fallbacks,
              (unsigned long long)s.fallback_error, (unsigned long long)s.fallback_no_receiver);
  rt.call([&] { MPI_Send(nullptr, 0, MPI_BYTE, 2, done_tag, offload::comm_of(rt)); });
}

buffer echo_request(std::uint64_t id, const kernel_registry& kernels, std::size_t bytes) {
  const std::vector<product> in{product::make("v", std::vector<std::uint8_t>(bytes, std::uint8_t(id)))};
  return encode({message_kind::request, id, *kernels.id_of("echo"), status::ok}, product_views(in));
}

void vanisher(runtime& rt, const kernel_registry& kernels) {
  offload_test::raw_send(rt, 0, detail::encode_hello(message_kind::hello, status::ok, kernels.signature()));
  auto ack = offload_test::raw_receive(rt, 0);
  const auto hello = detail::parse_hello(ack);
  EXPECT(hello.ok() && hello.terms && hello.terms->idle_timeout_ms == 1000, "hello_ack terms: %s", hello.error.c_str());
  for (std::uint64_t id = 1; id <= 4; ++id) {
    auto b = echo_request(id, kernels, 1 << 20);
    offload_test::raw_send(rt, 0, b);
  }
  // Gone quiet: no keepalive, no reads. (Waiting out the receiver's timeout is the point.)
  std::this_thread::sleep_for(3 * idle_timeout);
  offload_test::raw_send(rt, 0, echo_request(99, kernels, 64));
  int old_replies = 0;
  for (;;) {  // the replies of the dropped session may still arrive first
    auto m = offload_test::raw_receive(rt, 0);
    if (m.header().request_id != 99) {
      ++old_replies;
      continue;
    }
    EXPECT(m.header().kind == message_kind::error && m.header().status == status::no_handshake,
           "request after the drop: %s", std::string(to_string(m.header().status)).c_str());
    std::printf("vanisher: after the drop -> %s: %s (%d old replies arrived first)\n",
                std::string(to_string(m.header().status)).c_str(), error_text(m.view()).c_str(), old_replies);
    break;
  }
  // Rank 3 first finishes with its dropped session (the receiver must still be serving then).
  rt.call([&] { MPI_Recv(nullptr, 0, MPI_BYTE, 3, done_tag, offload::comm_of(rt), MPI_STATUS_IGNORE); });
  // A new session works.
  offload_test::raw_send(rt, 0, detail::encode_hello(message_kind::hello, status::ok, kernels.signature()));
  auto again = offload_test::raw_receive(rt, 0);
  EXPECT(again.header().kind == message_kind::hello_ack && again.header().status == status::ok, "second hello refused");
  offload_test::raw_send(rt, 0, echo_request(100, kernels, 64));
  auto reply = offload_test::raw_receive(rt, 0);
  EXPECT(reply.header().kind == message_kind::reply && reply.header().request_id == 100, "no reply in the new session");
  offload_test::raw_send(rt, 0, detail::encode_hello(message_kind::goodbye, status::ok, {}));
  auto bye = offload_test::raw_receive(rt, 0);
  EXPECT(bye.header().kind == message_kind::goodbye_ack, "goodbye not acknowledged");
}

void honest(runtime& rt, const kernel_registry& kernels) {
  transmitter tx(rt, kernels, mpi_link{{0}});
  const auto& mlp = *kernels.find("mlp");
  std::vector<std::vector<product>> inputs;
  for (int i = 0; i < 200; ++i) inputs.push_back(mlp.make_inputs({std::uint64_t(i), 32, 0}));
  std::vector<std::future<result>> futures;
  for (const auto& in : inputs) futures.push_back(tx.submit("mlp", product_views(in)));
  for (std::size_t i = 0; i < futures.size(); ++i) {
    auto r = futures[i].get();
    EXPECT(r.ok() && r.receiver() == 0, "event %zu not served remotely", i);
    EXPECT(compare_with_cpu(mlp, product_views(inputs[i]), r.products()).empty(), "event %zu: wrong result", i);
  }
}

}  // namespace

int main() {
  return offload_test::run_test(4, [](runtime& rt) {
    const auto& kernels = kernel_registry::builtin();
    if (rt.rank() == 0) {
      receiver_config cfg;
      cfg.idle_timeout = idle_timeout;
      receiver rx(rt, kernels, mpi_link{}, 4, cfg);
      const auto s = rx.wait();
      std::printf(
          "receiver: requests %llu, replies %llu, peers dropped %llu, replies discarded %llu, error replies %llu\n",
          (unsigned long long)s.requests, (unsigned long long)s.replies, (unsigned long long)s.peers_dropped,
          (unsigned long long)s.replies_discarded, (unsigned long long)s.error_replies);
      EXPECT(s.peers_dropped == 2, "peers dropped: %llu", (unsigned long long)s.peers_dropped);
      EXPECT(s.requests == 200 + 4 + 1 + 1, "requests: %llu", (unsigned long long)s.requests);
      EXPECT(s.replies_discarded >= 1, "no reply of the vanished peer was given up");
      EXPECT(s.peers_finished == 4, "sessions finished: %llu", (unsigned long long)s.peers_finished);
    } else if (rt.rank() == 1) {
      honest(rt, kernels);
    } else if (rt.rank() == 2) {
      vanisher(rt, kernels);
    } else {
      held(rt, kernels);
    }
  });
}
