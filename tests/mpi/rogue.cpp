// A rogue rank sends garbage to a receiver while two honest transmitters run validated
// events: every bad message gets a specific error reply, and the honest ranks complete.
// Run with 4 ranks: 0 receiver, 1-2 transmitters, 3 rogue.
#include <offload/mpi.hpp>
#include <offload/receiver.hpp>
#include <offload/runtime.hpp>
#include <offload/transmitter.hpp>

#include "finish.hpp"
#include "raw.hpp"
#include "src/session/handshake.hpp"
#include "tests/proc_status.hpp"

#include <unistd.h>

#include <cstring>
#include <string>
#include <vector>

using namespace offload;

namespace {

constexpr std::uint64_t max_bytes = 1 << 20;
constexpr std::size_t huge_bytes = std::size_t{64} << 20;  // oversized messages sent at once
constexpr int pid_tag = 90;                                // rank 0 tells rank 3 its process id

/// Sends `bytes` to the receiver (rank 0) and waits for its answer.
message exchange(runtime& rt, const buffer& bytes) {
  offload_test::raw_send(rt, 0, bytes);
  return offload_test::raw_receive(rt, 0);
}

void expect_error(runtime& rt, const buffer& bytes, status s, const std::string& text, const char* what) {
  auto m = exchange(rt, bytes);
  EXPECT(m.header().kind == message_kind::error, "%s: answer is %s", what,
         std::string(to_string(m.header().kind)).c_str());
  EXPECT(m.header().status == s, "%s: status %s", what, std::string(to_string(m.header().status)).c_str());
  const auto got = error_text(m.view());
  EXPECT(got.find(text) != std::string::npos, "%s: error text '%s' lacks '%s'", what, got.c_str(), text.c_str());
  std::printf("rogue: %-28s -> %s: %s\n", what, std::string(to_string(m.header().status)).c_str(), got.c_str());
}

buffer request(std::uint64_t id, std::uint32_t kernel_id, const std::vector<product>& ps) {
  return encode({message_kind::request, id, kernel_id, status::ok}, product_views(ps));
}

void rogue(runtime& rt, const kernel_registry& kernels) {
  const long receiver_pid = rt.call([&] {
    long pid = 0;
    MPI_Recv(&pid, 1, MPI_LONG, 0, pid_tag, comm_of(rt), MPI_STATUS_IGNORE);
    return pid;
  });
  buffer garbage(100);
  for (std::size_t i = 0; i < garbage.size(); ++i) garbage.data()[i] = std::byte(i * 37 + 11);
  expect_error(rt, garbage, status::malformed, "magic", "garbage before hello");

  const auto echo_inputs = std::vector<product>{product::make("v", std::vector<float>{1, 2, 3})};
  expect_error(rt, request(1, *kernels.id_of("echo"), echo_inputs), status::no_handshake, "before the hello",
               "request before hello");

  std::vector<product> bad_list{product::make("kernels", std::vector<std::uint8_t>{'e', 'c', 'h', 'o'})};
  expect_error(rt, encode({message_kind::hello, 0, 0, status::ok}, product_views(bad_list)), status::malformed,
               "bad hello: kernel list does not end with a newline", "hello with a bad kernel list");
  auto ack = exchange(rt, detail::encode_hello(message_kind::hello, status::ok, kernels.signature()));
  EXPECT(ack.header().kind == message_kind::hello_ack && ack.header().status == status::ok, "hello refused");

  buffer truncated(10);
  std::memset(truncated.data(), 0, 10);
  expect_error(rt, truncated, status::malformed, "shorter than the 64-byte header", "truncated header");

  auto bad_version = request(2, 0, echo_inputs);
  bad_version.data()[4] = std::byte{9};
  expect_error(rt, bad_version, status::malformed, "version is 9", "bad version");

  auto past_table = request(3, 0, echo_inputs);
  const std::uint32_t many = 7;  // within the limit of 8, past the message end
  std::memcpy(past_table.data() + 24, &many, 4);
  expect_error(rt, past_table, status::malformed, "product table", "product count past the table");

  auto bad_dtype = request(4, 0, echo_inputs);
  bad_dtype.data()[64 + 22] = std::byte{42};
  expect_error(rt, bad_dtype, status::malformed, "dtype 42", "unknown dtype");

  std::vector<product> big{product::make("v", std::vector<std::uint8_t>(2 * max_bytes, 1))};
  expect_error(rt, request(5, *kernels.id_of("echo"), big), status::too_large, "exceeds the receiver's maximum",
               "oversized message");
  // Several at once (sent together, so the receiver matches them together) are received one at
  // a time: the receiver's peak memory grows by about one of them, not three. They are answered
  // in order, and a small message sent after them is not answered before them.
  std::vector<product> huge{product::make("v", std::vector<std::uint8_t>(huge_bytes, 1))};
  std::vector<buffer> sends;
  for (std::uint64_t id = 50; id < 53; ++id) sends.push_back(request(id, *kernels.id_of("echo"), huge));
  sends.push_back(request(53, 99, echo_inputs));
  const long peak_before = offload_test::status_kib(receiver_pid, "VmHWM:");
  std::vector<MPI_Request> pending(sends.size());
  rt.call([&] {
    for (std::size_t i = 0; i < sends.size(); ++i)
      MPI_Isend(sends[i].data(), int(sends[i].size()), MPI_BYTE, 0, detail::offload_tag, comm_of(rt), &pending[i]);
  });
  for (std::uint64_t id = 50; id < 54; ++id) {
    auto m = offload_test::raw_receive(rt, 0);
    EXPECT(m.header().request_id == id && m.header().status == (id < 53 ? status::too_large : status::unknown_kernel),
           "oversized at once: answer %llu is for request %llu (%s)", (unsigned long long)(id - 50),
           (unsigned long long)m.header().request_id, std::string(to_string(m.header().status)).c_str());
  }
  rt.call([&] { MPI_Waitall(int(pending.size()), pending.data(), MPI_STATUSES_IGNORE); });
  const long grew = offload_test::status_kib(receiver_pid, "VmHWM:") - peak_before;
  std::printf("rogue: %-28s -> 3 too_large, then unknown_kernel, in order; the receiver's peak grew %ld MiB\n",
              "3 x 64 MiB oversized at once", grew >> 10);
  EXPECT(grew < 2 * long(huge_bytes >> 10), "the receiver's peak grew %ld KiB for three messages of %zu KiB", grew,
         std::size_t(huge_bytes >> 10));

  expect_error(rt, request(6, 99, echo_inputs), status::unknown_kernel, "kernel id 99", "unknown kernel id");

  std::vector<product> nine;
  // (Appending, not "p" + std::to_string(i): GCC 12 at -O3 warns about that with a false -Wrestrict, bug 105329.)
  for (int i = 0; i < 9; ++i)
    nine.push_back(product::make(std::string("p").append(std::to_string(i)), std::vector<float>{1}));
  expect_error(rt, request(9, *kernels.id_of("echo"), nine), status::malformed, "product_count is 9, the maximum is 8",
               "9 products, limit 8");
  std::vector<product> long_name{product::make(std::string(17, 'n'), std::vector<float>{1})};
  expect_error(rt, request(10, *kernels.id_of("echo"), long_name), status::malformed, "name length 17 is outside 1..16",
               "17-character name, limit 16");

  std::vector<product> odd{product::make("features", std::vector<float>(17, 0.5f))};
  expect_error(rt, request(7, *kernels.id_of("mlp"), odd), status::bad_input, "not a multiple of 16",
               "mlp with 17 features");

  // Credits: the receiver grants 8 outstanding requests; a burst of 9 without waiting gets
  // 8 replies and one credit_exceeded.
  const auto& synthetic = *kernels.find("synthetic");
  auto slow = synthetic.make_inputs({1, 1000, 300000});  // ~0.3 s each: all 9 arrive before the first reply
  int replies = 0, refused = 0;
  for (std::uint64_t i = 0; i < 9; ++i) {
    auto b = request(100 + i, *kernels.id_of("synthetic"), slow);
    offload_test::raw_send(rt, 0, b);
  }
  for (int i = 0; i < 9; ++i) {
    auto m = offload_test::raw_receive(rt, 0);
    if (m.header().kind == message_kind::reply) ++replies;
    if (m.header().kind == message_kind::error && m.header().status == status::credit_exceeded) {
      ++refused;
      std::printf("rogue: %-28s -> credit_exceeded: %s\n", "9 requests at once", error_text(m.view()).c_str());
    }
  }
  EXPECT(replies == 8 && refused == 1, "burst of 9: %d replies, %d refused", replies, refused);

  // Three mlp requests at once, the middle one malformed for the kernel: two replies and one
  // bad_input, whether or not they were batched together.
  const auto& mlp = *kernels.find("mlp");
  auto good = mlp.make_inputs({5, 4, 0});
  std::vector<buffer> trio;
  trio.push_back(request(200, *kernels.id_of("mlp"), good));
  trio.push_back(request(201, *kernels.id_of("mlp"), odd));
  trio.push_back(request(202, *kernels.id_of("mlp"), good));
  for (const auto& b : trio) offload_test::raw_send(rt, 0, b);
  int good_replies = 0, bad = 0;
  for (int i = 0; i < 3; ++i) {
    auto m = offload_test::raw_receive(rt, 0);
    if (m.header().kind == message_kind::reply && m.header().request_id != 201 &&
        compare_with_cpu(mlp, product_views(good), m.products()).empty())
      ++good_replies;
    if (m.header().kind == message_kind::error && m.header().request_id == 201 &&
        m.header().status == status::bad_input)
      ++bad;
  }
  EXPECT(good_replies == 2 && bad == 1, "trio: %d good replies, %d bad_input", good_replies, bad);

  // Messages in parts (docs/protocol.md section 1) whose parts do not fit their head: each is
  // answered, its parts are taken and dropped, and the next message is whole again.
  const auto two = std::vector<product>{product::make("a", std::vector<std::uint8_t>(40000, 1)),
                                        product::make("b", std::vector<float>(3000, 2.0f))};
  struct split {
    buffer head, whole;
    std::vector<std::span<const std::byte>> payloads;
  };
  auto in_parts = [&](std::uint64_t id, std::uint32_t parts) {
    split sp;
    sp.whole = request(id, *kernels.id_of("echo"), two);
    const auto decoded = decode(sp.whole.span());
    for (const auto& p : decoded.value().products) sp.payloads.emplace_back(p.data, p.size_bytes());
    const auto head_bytes = static_cast<std::size_t>(sp.payloads.front().data() - sp.whole.data());
    sp.head = buffer(head_bytes);
    std::memcpy(sp.head.data(), sp.whole.data(), head_bytes);
    write_parts(sp.head.span(), parts);
    return sp;
  };
  auto send_part = [&](std::span<const std::byte> bytes) {
    rt.call([&] { MPI_Send(bytes.data(), int(bytes.size()), MPI_BYTE, 0, detail::part_tag, comm_of(rt)); });
  };
  {
    auto sp = in_parts(300, 2);
    offload_test::raw_send(rt, 0, sp.head);
    send_part(sp.payloads[0].first(sp.payloads[0].size() - 10));  // 10 bytes short
    send_part(sp.payloads[1]);
    auto m = offload_test::raw_receive(rt, 0);
    EXPECT(m.header().kind == message_kind::error && m.header().status == status::malformed &&
               m.header().request_id == 300 && error_text(m.view()).find("a part of 39990 bytes") != std::string::npos,
           "part of the wrong length: %s", error_text(m.view()).c_str());
    std::printf("rogue: %-28s -> %s\n", "part of the wrong length", error_text(m.view()).c_str());
  }
  {
    auto sp = in_parts(301, 3);  // 3 parts announced, 2 payloads with bytes
    offload_test::raw_send(rt, 0, sp.head);
    for (const auto& p : sp.payloads) send_part(p);
    send_part(sp.payloads[1].first(5));
    auto m = offload_test::raw_receive(rt, 0);
    EXPECT(m.header().kind == message_kind::error && m.header().status == status::malformed &&
               m.header().request_id == 301 && error_text(m.view()).find("bad_parts") != std::string::npos,
           "wrong part count: %s", error_text(m.view()).c_str());
    std::printf("rogue: %-28s -> %s\n", "wrong part count", error_text(m.view()).c_str());
  }
  {
    auto sp = in_parts(302, 2);
    const std::uint64_t claimed = 2 * max_bytes;  // total_size past the receiver's maximum
    std::memcpy(sp.head.data() + 32, &claimed, sizeof claimed);
    offload_test::raw_send(rt, 0, sp.head);
    for (const auto& p : sp.payloads) send_part(p);
    auto m = offload_test::raw_receive(rt, 0);
    EXPECT(m.header().kind == message_kind::error && m.header().status == status::too_large &&
               m.header().request_id == 302,
           "oversized message in parts: %s", error_text(m.view()).c_str());
    std::printf("rogue: %-28s -> %s\n", "oversized message in parts", error_text(m.view()).c_str());
  }
  {
    auto sp = in_parts(303, 2);  // a good one: served, in place
    offload_test::raw_send(rt, 0, sp.head);
    for (const auto& p : sp.payloads) send_part(p);
    auto m = offload_test::raw_receive(rt, 0);
    EXPECT(m.header().kind == message_kind::reply && m.header().request_id == 303 &&
               compare_products(product_views(two), m.products()).empty(),
           "a good message in parts was not echoed: %s",
           m.header().kind == message_kind::error ? error_text(m.view()).c_str() : "wrong reply");
  }

  // Still served after all that.
  auto ok = exchange(rt, request(8, *kernels.id_of("echo"), echo_inputs));
  EXPECT(ok.header().kind == message_kind::reply && ok.header().request_id == 8, "echo after garbage failed");
  EXPECT(compare_products(product_views(echo_inputs), ok.products()).empty(), "echo returned different data");

  auto bye = exchange(rt, detail::encode_hello(message_kind::goodbye, status::ok, {}));
  EXPECT(bye.header().kind == message_kind::goodbye_ack, "goodbye not acknowledged");
}

void honest(runtime& rt, const kernel_registry& kernels) {
  transmitter tx(rt, kernels, mpi_link{{0}});
  const auto& mlp = *kernels.find("mlp");
  std::vector<std::future<result>> futures;
  std::vector<std::vector<product>> inputs;
  for (int i = 0; i < 200; ++i) inputs.push_back(mlp.make_inputs({std::uint64_t(rt.rank() * 1000 + i), 32, 0}));
  for (const auto& in : inputs) futures.push_back(tx.submit("mlp", product_views(in)));
  for (std::size_t i = 0; i < futures.size(); ++i) {
    auto r = futures[i].get();
    EXPECT(r.ok() && r.receiver() == 0, "event %zu not served remotely: %s", i, r.error().c_str());
    auto diff = compare_with_cpu(mlp, product_views(inputs[i]), r.products());
    EXPECT(diff.empty(), "event %zu: %s", i, diff.c_str());
  }
  tx.close();
  EXPECT(tx.stats().remote == 200, "remote %llu", (unsigned long long)tx.stats().remote);
  std::printf("transmitter rank %d: 200 mlp events validated\n", rt.rank());
}

}  // namespace

int main() {
  return offload_test::run_test(4, [](runtime& rt) {
    const auto& kernels = kernel_registry::builtin();
    if (rt.rank() == 0) {
      receiver_config cfg;
      cfg.limits = {max_bytes, 8, 16};
      cfg.max_batch = 4;  // batching on: bad requests in a batch must not spoil the others
      cfg.max_wait = std::chrono::milliseconds(5);
      rt.call([&] {
        long pid = long(getpid());
        MPI_Send(&pid, 1, MPI_LONG, 3, pid_tag, comm_of(rt));
      });
      receiver rx(rt, kernels, mpi_link{}, 3, cfg);
      auto s = rx.wait();
      std::string hist;
      for (std::size_t n = 1; n < s.batch_sizes.size(); ++n)
        hist.append(" ").append(std::to_string(n)).append(":").append(std::to_string(s.batch_sizes[n]));
      std::printf("receiver: batches (size:count)%s\n", hist.c_str());
      std::printf("receiver: requests %llu, replies %llu, error replies %llu, malformed %llu\n",
                  (unsigned long long)s.requests, (unsigned long long)s.replies, (unsigned long long)s.error_replies,
                  (unsigned long long)s.malformed);
      // 3 oversized in a row and 3 bad messages in parts among them; one good one in parts.
      EXPECT(s.malformed == 15, "malformed %llu", (unsigned long long)s.malformed);
      EXPECT(s.replies == 412, "replies %llu", (unsigned long long)s.replies);
      EXPECT(s.error_replies == 21, "error replies %llu", (unsigned long long)s.error_replies);
    } else if (rt.rank() == 3) {
      rogue(rt, kernels);
    } else {
      honest(rt, kernels);
    }
  });
}
