// One kernel thread shared fairly, over MPI: rank 1 sends a burst of 8 slow synthetic requests
// and tells rank 2, which then sends one echo: at most 2 of the burst's replies may come before
// the echo's (round robin over per-peer queues: the request running, and at most one more).
// Then rank 3 sends 8 slow requests and says goodbye at once: the receiver drops the ones not yet
// started (work_dropped) and acknowledges the goodbye after the running one; rank 3 counts the
// replies it got, and replies + dropped = 8. Rank 2 also sends a request whose declared work
// exceeds the receiver's max_work: refused with too_large, saying so. Run with 4 ranks.
#include <offload/mpi.hpp>
#include <offload/receiver.hpp>
#include <offload/runtime.hpp>

#include "finish.hpp"
#include "raw.hpp"
#include "src/session/handshake.hpp"

#include <chrono>
#include <cstdint>
#include <vector>

using namespace offload;

namespace {

constexpr int burst = 8;
constexpr std::uint64_t elements = 1000, iterations = 150000;  // about 0.3 s per request here
constexpr double max_work = 1e9;                               // flops; the burst's requests declare 3e8
constexpr int tag_burst_sent = 79, tag_echo_time = 80, tag_replies = 78, tag_go = 81;

std::int64_t now_ns() {  // CLOCK_MONOTONIC: one clock for every process of the node
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

buffer request(const kernel_registry& kernels, std::string_view kernel, std::uint64_t id,
               const std::vector<product>& in) {
  return encode({message_kind::request, id, *kernels.id_of(kernel), status::ok}, product_views(in));
}

void hello(runtime& rt, const kernel_registry& kernels) {
  offload_test::raw_send(rt, 0, detail::encode_hello(message_kind::hello, status::ok, kernels.signature()));
  auto ack = offload_test::raw_receive(rt, 0);
  EXPECT(ack.header().kind == message_kind::hello_ack && ack.header().status == status::ok, "rank %d: hello refused",
         rt.rank());
}

void goodbye(runtime& rt) {
  offload_test::raw_send(rt, 0, detail::make_goodbye());
  auto bye = offload_test::raw_receive(rt, 0);
  EXPECT(bye.header().kind == message_kind::goodbye_ack, "rank %d: goodbye not acknowledged", rt.rank());
}

template <class T> void send_to(runtime& rt, int dest, int tag, T value) {
  rt.call([&] { MPI_Send(&value, sizeof value, MPI_BYTE, dest, tag, offload::comm_of(rt)); });
}
template <class T> T receive_from(runtime& rt, int source, int tag) {
  T value{};
  rt.call([&] { MPI_Recv(&value, sizeof value, MPI_BYTE, source, tag, offload::comm_of(rt), MPI_STATUS_IGNORE); });
  return value;
}

void burster(runtime& rt, const kernel_registry& kernels) {
  hello(rt, kernels);
  const auto in = kernels.find("synthetic")->make_inputs({1, elements, iterations});
  for (int i = 0; i < burst; ++i) offload_test::raw_send(rt, 0, request(kernels, "synthetic", 100 + i, in));
  send_to(rt, 2, tag_burst_sent, 1);
  std::vector<std::int64_t> at;
  for (int i = 0; i < burst; ++i) {
    auto m = offload_test::raw_receive(rt, 0);
    EXPECT(m.header().kind == message_kind::reply, "burst: answer %s", std::string(to_string(m.header().kind)).c_str());
    at.push_back(now_ns());
  }
  const auto echo_at = receive_from<std::int64_t>(rt, 2, tag_echo_time);
  int before = 0;
  for (auto t : at) before += t < echo_at ? 1 : 0;
  std::printf("fair: %d of the burst's %d replies came before the other rank's echo\n", before, burst);
  EXPECT(before <= 1, "%d of the burst's requests ran before another rank's single echo", before);
  goodbye(rt);
  send_to(rt, 3, tag_go, 1);  // the leaver's turn: alone, so the two cases do not mix
}

void single(runtime& rt, const kernel_registry& kernels) {
  hello(rt, kernels);
  receive_from<int>(rt, 1, tag_burst_sent);
  const std::vector<product> in{product::make("v", std::vector<float>{1, 2, 3})};
  const auto t0 = now_ns();
  offload_test::raw_send(rt, 0, request(kernels, "echo", 1, in));
  auto reply = offload_test::raw_receive(rt, 0);
  const auto t1 = now_ns();
  EXPECT(reply.header().kind == message_kind::reply, "echo: answer %s",
         std::string(to_string(reply.header().kind)).c_str());
  std::printf("fair: the echo behind the burst waited %.3f s\n", 1e-9 * double(t1 - t0));
  send_to(rt, 1, tag_echo_time, t1);
  // Declared work over max_work: 2 x 1000 x 10^6 flops.
  offload_test::raw_send(rt, 0,
                         request(kernels, "synthetic", 2, kernels.find("synthetic")->make_inputs({1, 1000, 1000000})));
  auto refused = offload_test::raw_receive(rt, 0);
  const auto text = error_text(refused.view());
  EXPECT(refused.header().kind == message_kind::error && refused.header().status == status::too_large &&
             text.find("exceeds this receiver's maximum") != std::string::npos,
         "work over max_work: %s: %s", std::string(to_string(refused.header().status)).c_str(), text.c_str());
  std::printf("fair: over max_work -> %s: %s\n", std::string(to_string(refused.header().status)).c_str(), text.c_str());
  goodbye(rt);
}

void leaver(runtime& rt, const kernel_registry& kernels) {
  hello(rt, kernels);
  receive_from<int>(rt, 1, tag_go);
  const auto in = kernels.find("synthetic")->make_inputs({2, elements, iterations});
  for (int i = 0; i < burst; ++i) offload_test::raw_send(rt, 0, request(kernels, "synthetic", 200 + i, in));
  offload_test::raw_send(rt, 0, detail::make_goodbye());
  int replies = 0;
  for (;;) {
    auto m = offload_test::raw_receive(rt, 0);
    if (m.header().kind == message_kind::goodbye_ack) break;
    EXPECT(m.header().kind == message_kind::reply, "leaver: answer %s",
           std::string(to_string(m.header().kind)).c_str());
    ++replies;
  }
  std::printf("fair: the rank that left got %d of its %d replies before its goodbye_ack\n", replies, burst);
  send_to(rt, 0, tag_replies, replies);
}

}  // namespace

int main() {
  return offload_test::run_test(4, [](runtime& rt) {
    const auto& kernels = kernel_registry::builtin();
    if (rt.rank() == 0) {
      receiver_config cfg;
      cfg.backend = backend_kind::cpu;
      cfg.threads = 1;
      cfg.max_work = max_work;
      receiver_stats s;
      {
        receiver rx(rt, kernels, mpi_link{}, 3, cfg);
        s = rx.wait();
      }
      const int leaver_replies = receive_from<int>(rt, 3, tag_replies);
      std::printf("receiver: %s\n", counters_text(s).c_str());
      EXPECT(s.work_dropped + std::uint64_t(leaver_replies) == burst,
             "work dropped %llu + the leaver's replies %d is not %d", (unsigned long long)s.work_dropped,
             leaver_replies, burst);
      EXPECT(s.work_dropped >= 1, "nothing was dropped");
    } else if (rt.rank() == 1) {
      burster(rt, kernels);
    } else if (rt.rank() == 2) {
      single(rt, kernels);
    } else {
      leaver(rt, kernels);
    }
  });
}
