// A rogue rank sends a real MPI message of 2 GiB + 1 byte (one MPI_BYTE count cannot describe
// it) to a receiver while an honest transmitter runs validated events: the receiver answers it
// too_large, gives its memory back at once, and goes on serving both ranks; no rank aborts.
// The rogue then announces an oversized message in 2^32 - 1 parts (answered too_large too).
// Run with 3 ranks: 0 receiver (default limits: 1 GiB), 1 honest transmitter, 2 rogue. Needs
// about 3 GiB of memory (the receiver holds the message once; the rogue's pages past its
// header are never written); prints "SKIP:" when less is available.
#include <offload/mpi.hpp>
#include <offload/receiver.hpp>
#include <offload/runtime.hpp>
#include <offload/transmitter.hpp>

#include "finish.hpp"
#include "raw.hpp"
#include "src/session/handshake.hpp"
#include "tests/proc_status.hpp"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

using namespace offload;

namespace {

constexpr std::size_t huge_bytes = (std::size_t{1} << 31) + 1;
constexpr long needed_kib = 4L << 20;  // MemAvailable wanted on the node: 4 GiB
constexpr int pid_tag = 90;            // rank 0 tells rank 2 its process id
constexpr int done_tag = 91;           // rank 2 tells rank 1 that its huge message was answered
constexpr int ready_tag = 92;          // rank 1 tells rank 2 that its events are flowing
constexpr std::uint64_t huge_id = 77;

long mem_available_kib() {
  std::ifstream f("/proc/meminfo");
  std::string key;
  long value = 0;
  while (f >> key >> value) {
    if (key == "MemAvailable:") return value;
    f.ignore(1 << 10, '\n');
  }
  return 0;
}

buffer request(std::uint64_t id, std::uint32_t kernel_id, const std::vector<product>& ps) {
  return encode({message_kind::request, id, kernel_id, status::ok}, product_views(ps));
}

/// A datatype of exactly `bytes` bytes: 1 MiB blocks, then the rest (as a sender of 2 GiB would).
MPI_Datatype bytes_type(std::size_t bytes) {
  const std::size_t block = std::size_t{1} << 20;
  MPI_Datatype blocks, whole;
  MPI_Type_contiguous(int(block), MPI_BYTE, &blocks);
  int lengths[2] = {int(bytes / block), int(bytes % block)};
  MPI_Aint displacements[2] = {0, MPI_Aint(bytes / block * block)};
  MPI_Datatype types[2] = {blocks, MPI_BYTE};
  MPI_Type_create_struct(2, lengths, displacements, types, &whole);
  MPI_Type_commit(&whole);
  MPI_Type_free(&blocks);
  return whole;
}

void rogue(runtime& rt, const kernel_registry& kernels) {
  const long receiver_pid = rt.call([&] {
    long pid = 0;
    MPI_Recv(&pid, 1, MPI_LONG, 0, pid_tag, comm_of(rt), MPI_STATUS_IGNORE);
    return pid;
  });
  offload_test::raw_send(rt, 0, detail::encode_hello(message_kind::hello, status::ok, kernels.signature()));
  auto ack = offload_test::raw_receive(rt, 0);
  EXPECT(ack.header().kind == message_kind::hello_ack && ack.header().status == status::ok, "hello refused");

  // Once the honest transmitter's events flow: 2 GiB + 1 byte that start as an echo request
  // (for its id); the rest is never written, so it costs this rank no memory.
  rt.call([&] { MPI_Recv(nullptr, 0, MPI_BYTE, 1, ready_tag, comm_of(rt), MPI_STATUS_IGNORE); });
  const auto echo_inputs = std::vector<product>{product::make("v", std::vector<float>{1, 2, 3})};
  const auto head = request(huge_id, *kernels.id_of("echo"), echo_inputs);
  buffer huge(huge_bytes);
  std::memcpy(huge.data(), head.data(), head.size());
  const long peak_before = offload_test::status_kib(receiver_pid, "VmHWM:");
  const long rss_before = offload_test::status_kib(receiver_pid, "VmRSS:");
  const auto t0 = std::chrono::steady_clock::now();
  MPI_Request sent = MPI_REQUEST_NULL;
  rt.call([&] {
    MPI_Datatype type = bytes_type(huge_bytes);
    MPI_Isend(huge.data(), 1, type, 0, detail::offload_tag, comm_of(rt), &sent);
    MPI_Type_free(&type);
  });
  auto m = offload_test::raw_receive(rt, 0);
  rt.call([&] { MPI_Wait(&sent, MPI_STATUS_IGNORE); });
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  huge = buffer{};
  rt.call([&] { MPI_Send(nullptr, 0, MPI_BYTE, 1, done_tag, comm_of(rt)); });
  const std::string text = m.header().kind == message_kind::error ? error_text(m.view()) : "(not an error)";
  EXPECT(m.header().kind == message_kind::error && m.header().status == status::too_large &&
             m.header().request_id == huge_id,
         "2 GiB + 1 byte: answer %s, status %s, request %llu: %s", std::string(to_string(m.header().kind)).c_str(),
         std::string(to_string(m.header().status)).c_str(), (unsigned long long)m.header().request_id, text.c_str());
  EXPECT(text.find("message of 2147483649 bytes exceeds the receiver's maximum") != std::string::npos, "error text: %s",
         text.c_str());
  std::printf("rogue: 2 GiB + 1 byte message -> %s in %.2f s: %s\n", std::string(to_string(m.header().status)).c_str(),
              seconds, text.c_str());

  // Its memory: held once while it was received, given back at once (the receiver trims its
  // heap at most twice a second).
  const long grew = offload_test::status_kib(receiver_pid, "VmHWM:") - peak_before;
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  const long rss_after = offload_test::status_kib(receiver_pid, "VmRSS:");
  std::printf("rogue: the receiver's peak grew %ld MiB; its RSS was %ld MiB before, %ld MiB 1.5 s after\n", grew >> 10,
              rss_before >> 10, rss_after >> 10);
  // Held once, never copied: its peak grew by less than 1.5 times the message (what else the
  // receiver does meanwhile, serving rank 1 and MPI's own buffers, has measured 0 to 263 MiB).
  EXPECT(grew < long(huge_bytes >> 10) * 3 / 2, "the receiver's peak grew %ld KiB for one message of %zu KiB", grew,
         huge_bytes >> 10);
  EXPECT(rss_after < rss_before + (256L << 10), "the receiver's RSS is %ld KiB, %ld KiB before the message", rss_after,
         rss_before);

  // A head that announces 2^32 - 1 parts of a message over the maximum: answered too_large;
  // the parts it would have are dropped as they come (none do), kept as one count, not one
  // entry each.
  {
    auto head_only = request(huge_id + 2, *kernels.id_of("echo"), echo_inputs);
    const std::uint64_t claimed = std::uint64_t{3} << 30;
    std::memcpy(head_only.data() + 32, &claimed, sizeof claimed);  // total_size
    write_parts(head_only.span(), 0xffffffffu);
    offload_test::raw_send(rt, 0, head_only);
    auto e = offload_test::raw_receive(rt, 0);
    const std::string why = e.header().kind == message_kind::error ? error_text(e.view()) : "(not an error)";
    EXPECT(e.header().kind == message_kind::error && e.header().status == status::too_large &&
               e.header().request_id == huge_id + 2,
           "head of 2^32 - 1 parts: %s", why.c_str());
    std::printf("rogue: head of 2^32 - 1 parts -> %s: %s\n", std::string(to_string(e.header().status)).c_str(),
                why.c_str());
  }

  // Still in session, and served.
  offload_test::raw_send(rt, 0, request(huge_id + 1, *kernels.id_of("echo"), echo_inputs));
  auto ok = offload_test::raw_receive(rt, 0);
  EXPECT(ok.header().kind == message_kind::reply && ok.header().request_id == huge_id + 1,
         "echo after the huge message: %s",
         ok.header().kind == message_kind::error ? error_text(ok.view()).c_str() : "wrong reply");
  if (ok.header().kind == message_kind::reply)
    EXPECT(compare_products(product_views(echo_inputs), ok.products()).empty(), "echo returned different data");
  auto bye = [&] {
    offload_test::raw_send(rt, 0, detail::encode_hello(message_kind::goodbye, status::ok, {}));
    return offload_test::raw_receive(rt, 0);
  }();
  EXPECT(bye.header().kind == message_kind::goodbye_ack, "goodbye not acknowledged");
  std::printf("rogue: then an echo request -> served; goodbye -> acknowledged\n");
}

void honest(runtime& rt, const kernel_registry& kernels) {
  // Events in waves of 5 until the rogue's huge message has been answered (at least 50), so
  // that they run while it is received.
  transmitter tx(rt, kernels, mpi_link{{0}});
  const auto& mlp = *kernels.find("mlp");
  std::uint64_t events = 0, during = 0;
  double longest = 0;  // seconds, the longest wave of 5
  bool done = false;
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(150);
  while ((!done || events < 50) && std::chrono::steady_clock::now() < give_up) {
    if (!done) {
      int flag = 0;
      rt.call([&] { MPI_Iprobe(2, done_tag, comm_of(rt), &flag, MPI_STATUS_IGNORE); });
      if (flag) {
        rt.call([&] { MPI_Recv(nullptr, 0, MPI_BYTE, 2, done_tag, comm_of(rt), MPI_STATUS_IGNORE); });
        done = true;
        during = events;
      }
    }
    const auto wave_start = std::chrono::steady_clock::now();
    std::vector<std::vector<product>> inputs;
    std::vector<std::future<result>> futures;
    for (int i = 0; i < 5; ++i) inputs.push_back(mlp.make_inputs({1000 + events + std::uint64_t(i), 32, 0}));
    for (const auto& in : inputs) futures.push_back(tx.submit("mlp", product_views(in)));
    for (std::size_t i = 0; i < futures.size(); ++i) {
      auto r = futures[i].get();
      EXPECT(r.ok() && r.receiver() == 0, "event %llu not served remotely: %s", (unsigned long long)(events + i),
             r.error().c_str());
      auto diff = compare_with_cpu(mlp, product_views(inputs[i]), r.products());
      EXPECT(diff.empty(), "event %llu: %s", (unsigned long long)(events + i), diff.c_str());
    }
    if (events == 0) rt.call([&] { MPI_Send(nullptr, 0, MPI_BYTE, 2, ready_tag, comm_of(rt)); });
    events += futures.size();
    longest = std::max(longest, std::chrono::duration<double>(std::chrono::steady_clock::now() - wave_start).count());
  }
  EXPECT(done, "the rogue never said its huge message was answered");
  tx.close();
  EXPECT(tx.stats().remote == events, "remote %llu of %llu", (unsigned long long)tx.stats().remote,
         (unsigned long long)events);
  std::printf(
      "transmitter rank 1: %llu mlp events validated (%llu before the huge message was answered), longest wave of 5 "
      "%.2f s\n",
      (unsigned long long)events, (unsigned long long)during, longest);
}

}  // namespace

int main() {
  offload::runtime rt;
  if (rt.size() != 3) {
    std::fprintf(stderr, "run with 3 ranks\n");
    return 2;
  }
  const long available = mem_available_kib();
  if (!rt.all_agree(available >= needed_kib)) {
    if (rt.rank() == 0)
      std::printf("SKIP: needs %ld MiB of available memory on each rank's node (rank 0's has %ld MiB)\n",
                  needed_kib >> 10, available >> 10);
    return 0;
  }
  try {
    const auto& kernels = kernel_registry::builtin();
    if (rt.rank() == 0) {
      rt.call([&] {
        long pid = long(getpid());
        MPI_Send(&pid, 1, MPI_LONG, 2, pid_tag, comm_of(rt));
      });
      receiver rx(rt, kernels, mpi_link{}, 2);  // default limits: 1 GiB at most
      auto s = rx.wait();
      std::printf("receiver: requests %llu, replies %llu, error replies %llu, malformed %llu, peers finished %llu\n",
                  (unsigned long long)s.requests, (unsigned long long)s.replies, (unsigned long long)s.error_replies,
                  (unsigned long long)s.malformed, (unsigned long long)s.peers_finished);
      EXPECT(s.error_replies == 2 && s.malformed == 2, "error replies %llu, malformed %llu",
             (unsigned long long)s.error_replies, (unsigned long long)s.malformed);
      EXPECT(s.replies == s.requests && s.requests >= 51, "requests %llu, replies %llu", (unsigned long long)s.requests,
             (unsigned long long)s.replies);
      EXPECT(s.peers_finished == 2, "peers finished %llu", (unsigned long long)s.peers_finished);
    } else if (rt.rank() == 2) {
      rogue(rt, kernels);
    } else {
      honest(rt, kernels);
    }
  } catch (const std::exception& e) {
    EXPECT(false, "rank %d threw: %s", rt.rank(), e.what());
  }
  return offload_test::finish(rt);
}
