// Rogue gRPC clients against a gRPC receiver while an honest transmitter runs validated echo
// requests, all in one process and without MPI: every bad message gets a specific error reply
// on its stream, a stream of another method is refused, a stream cut mid-session is dropped
// with its credits, and the honest transmitter loses nothing.
#include <offload/grpc.hpp>
#include <offload/receiver.hpp>
#include <offload/runtime.hpp>
#include <offload/transmitter.hpp>

#include "src/session/handshake.hpp"
#include "src/transport/grpc_endpoint.hpp"
#include "tests/grpc/raw_stream.hpp"
#include "tests/mpi/check.hpp"

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include <cstring>
#include <optional>
#include <string>
#include <thread>

using namespace offload;

namespace {

constexpr std::uint64_t max_bytes = 64 << 10;

buffer request(std::uint64_t id, std::uint32_t kernel_id, const std::vector<product>& ps) {
  return encode({message_kind::request, id, kernel_id, status::ok}, product_views(ps));
}

void expect_error(offload_test::raw_stream& s, const buffer& bytes, status st, const std::string& text,
                  const char* what, std::uint64_t id = 0) {
  EXPECT(s.send(bytes), "%s: the send failed", what);
  auto m = s.receive();
  EXPECT(m.has_value(), "%s: no answer", what);
  if (!m) return;
  EXPECT(m->header().kind == message_kind::error, "%s: answer is %s", what,
         std::string(to_string(m->header().kind)).c_str());
  EXPECT(m->header().status == st, "%s: status %s", what, std::string(to_string(m->header().status)).c_str());
  EXPECT(m->header().request_id == id, "%s: error for request %llu, expected %llu", what,
         (unsigned long long)m->header().request_id, (unsigned long long)id);
  const auto got = error_text(m->view());
  EXPECT(got.find(text) != std::string::npos, "%s: error text '%s' lacks '%s'", what, got.c_str(), text.c_str());
  std::printf("rogue: %-30s -> %s: %s\n", what, std::string(to_string(m->header().status)).c_str(), got.c_str());
}

void rogue(const std::string& address, const kernel_registry& kernels) {
  offload_test::raw_stream s(address, detail::grpc_session_method);
  expect_error(s, offload_test::garbage(), status::malformed, "magic", "garbage before hello");
  const auto echo = *kernels.id_of("echo");
  const auto inputs = std::vector<product>{product::make("v", std::vector<float>{1, 2, 3})};
  expect_error(s, request(7, echo, inputs), status::no_handshake, "before the hello", "request before hello", 7);
  EXPECT(s.send(detail::encode_hello(message_kind::hello, status::ok, kernels.signature())), "hello not sent");
  auto ack = s.receive();
  EXPECT(ack && ack->header().kind == message_kind::hello_ack && ack->header().status == status::ok, "hello refused");

  const auto big = std::vector<product>{product::make("v", std::vector<float>(40000, 1.0f))};  // 160 KB
  expect_error(s, request(8, echo, big), status::too_large, "exceeds the receiver's maximum of 65536",
               "message over the maximum", 8);
  buffer truncated(10);
  std::memset(truncated.data(), 0, 10);
  expect_error(s, truncated, status::malformed, "shorter than the 64-byte header", "truncated header");
  expect_error(s, request(9, 999, inputs), status::unknown_kernel, "kernel id 999", "unknown kernel id", 9);

  // The stream still serves: a valid request gets its echo.
  EXPECT(s.send(request(10, echo, inputs)), "request not sent");
  auto reply = s.receive();
  EXPECT(reply && reply->header().kind == message_kind::reply && reply->header().request_id == 10,
         "no reply to a valid request after the bad ones");
  if (reply && reply->header().kind == message_kind::reply) {
    const auto& out = reply->products();
    EXPECT(out.size() == 1 && out[0].count == 3 && std::memcmp(out[0].data, inputs[0].view().data, 12) == 0,
           "the echo differs");
  }
  EXPECT(s.send(detail::encode_hello(message_kind::goodbye, status::ok, {})), "goodbye not sent");
  auto bye = s.receive();
  EXPECT(bye && bye->header().kind == message_kind::goodbye_ack, "no goodbye_ack");
  const auto st = s.finish();
  EXPECT(st.ok(), "the stream ended with '%s'", st.error_message().c_str());
  std::printf("rogue: session ended with status OK after its goodbye\n");

  // Another method: refused by the server, and no peer.
  offload_test::raw_stream other(address, "/offload.Offload/Other");
  const auto refused = other.finish();
  EXPECT(refused.error_code() == grpc::StatusCode::UNIMPLEMENTED, "another method got code %d",
         int(refused.error_code()));
  std::printf("rogue: another method -> code %d: %s\n", int(refused.error_code()), refused.error_message().c_str());

  // A session cut with a request outstanding: the receiver drops it (and its credit).
  offload_test::raw_stream cut(address, detail::grpc_session_method);
  EXPECT(cut.send(detail::encode_hello(message_kind::hello, status::ok, kernels.signature())), "hello not sent");
  EXPECT(cut.receive().has_value(), "no hello_ack");
  const auto slow = std::vector<product>{product::make("x", std::vector<float>(4096, 1.0f))};
  EXPECT(cut.send(request(11, *kernels.id_of("synthetic"), slow)), "request not sent");
  cut.cut();
}

/// The stream limits of grpc_listen, on a receiver of their own: a stream that says nothing is
/// cut off after hello_timeout; a client that stops reading its replies after write_timeout; a
/// stream past max_streams_per_address from one address is refused.
void stream_limits(runtime& rt, const kernel_registry& kernels, receiver_config rc) {
  rc.limits.max_message_bytes = 8 << 20;
  grpc_listen listen{"127.0.0.1:0", 2};
  listen.hello_timeout = std::chrono::milliseconds(300);
  listen.write_timeout = std::chrono::milliseconds(1000);
  listen.max_streams_per_address = 3;
  receiver rx(rt, kernels, listen, 1000, rc);
  const std::string address = "127.0.0.1:" + std::to_string(rx.port());
  const auto hello = detail::encode_hello(message_kind::hello, status::ok, kernels.signature());
  using clock = std::chrono::steady_clock;

  {  // silent: its read ends when the receiver cuts it
    offload_test::raw_stream silent(address, detail::grpc_session_method);
    const auto t0 = clock::now();
    EXPECT(!silent.receive().has_value(), "a silent stream got a message");
    const auto st = silent.finish();
    EXPECT(st.error_code() == grpc::StatusCode::CANCELLED, "a silent stream ended with code %d", int(st.error_code()));
    std::printf("rogue: a stream that says nothing -> cut after %.2f s (hello_timeout 0.3 s), code %d\n",
                std::chrono::duration<double>(clock::now() - t0).count(), int(st.error_code()));
  }

  // A client that sends requests and never reads: its replies (32 MiB) fill gRPC's flow-control
  // windows, a write waits, and past write_timeout the stream is cut (its sends then fail).
  offload_test::raw_stream deaf(address, detail::grpc_session_method);
  EXPECT(deaf.send(hello) && deaf.receive().has_value(), "deaf: no hello_ack");
  const auto echo = *kernels.id_of("echo");
  const auto payload = std::vector<product>{product::make("v", std::vector<float>(1 << 20, 1.0f))};  // 4 MiB
  for (std::uint64_t id = 1; id <= 8; ++id) EXPECT(deaf.send(request(id, echo, payload)), "deaf: request not sent");
  const auto t0 = clock::now();
  const auto keepalive = detail::encode_hello(message_kind::keepalive, status::ok, {});
  bool cut = false;
  while (!cut && clock::now() - t0 < std::chrono::seconds(20)) {
    cut = !deaf.send(keepalive);
    if (!cut) std::this_thread::sleep_for(std::chrono::milliseconds(50));  // (a client's keepalive period)
  }
  EXPECT(cut, "a client that does not read was not cut off within 20 s");
  deaf.cut();  // (its slot is free once the receiver has seen the end)
  std::printf("rogue: a client that does not read -> cut after %.2f s (write_timeout 1 s)\n",
              std::chrono::duration<double>(clock::now() - t0).count());

  // Three streams from 127.0.0.1 open: a fourth is refused.
  std::vector<std::unique_ptr<offload_test::raw_stream>> held;
  for (int i = 0; i < 3; ++i) {
    held.push_back(std::make_unique<offload_test::raw_stream>(address, detail::grpc_session_method));
    EXPECT(held.back()->send(hello) && held.back()->receive().has_value(), "stream %d: no hello_ack", i);
  }
  offload_test::raw_stream fourth(address, detail::grpc_session_method);
  EXPECT(!fourth.receive().has_value(), "a fourth stream from one address got a message");
  const auto st = fourth.finish();
  EXPECT(st.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED &&
             st.error_message().find("3 streams from ipv4:127.0.0.1 are open") != std::string::npos,
         "a fourth stream from one address: code %d '%s'", int(st.error_code()), st.error_message().c_str());
  std::printf("rogue: a fourth stream from one address -> code %d: %s\n", int(st.error_code()),
              st.error_message().c_str());
}

}  // namespace

int main() {
  progress_options po;
  po.mpi = false;
  runtime rt(po);
  const auto& kernels = kernel_registry::builtin();
  receiver_config rc;
  rc.backend = backend_kind::cpu;
  rc.limits.max_message_bytes = max_bytes;
  // The rogue session, the cut one and the honest transmitter.
  receiver rx(rt, kernels, grpc_listen{"127.0.0.1:0", 2}, 3, rc);
  const std::string address = "127.0.0.1:" + std::to_string(rx.port());

  std::uint64_t good = 0, wrong = 0;
  std::thread honest([&] {
    transmitter_config tc;
    tc.credits = 4;
    transmitter tx(rt, kernels, grpc_link{{address}}, tc);
    std::vector<std::future<result>> pending;
    for (int i = 0; i < 200; ++i) {
      std::vector<float> v(256);
      for (std::size_t k = 0; k < v.size(); ++k) v[k] = float(i) + 0.5f * float(k);
      const auto in = std::vector<product>{product::make("v", v)};
      auto r = tx.submit("echo", product_views(in)).get();
      const bool same = r.ok() && r.receiver() == 0 && r.products().size() == 1 &&
                        std::memcmp(r.products()[0].data, v.data(), v.size() * sizeof(float)) == 0;
      (same ? good : wrong) += 1;
    }
    tx.close();
  });
  rogue(address, kernels);
  honest.join();
  EXPECT(good == 200 && wrong == 0, "honest transmitter: %llu right, %llu wrong", (unsigned long long)good,
         (unsigned long long)wrong);
  const bool done = rx.wait_for(std::chrono::seconds(30));
  EXPECT(done, "the receiver did not finish its 3 sessions");
  const auto st = rx.stats();
  std::printf(
      "receiver: requests %llu, replies %llu, error replies %llu, malformed %llu, peers finished %llu, "
      "dropped %llu\n",
      (unsigned long long)st.requests, (unsigned long long)st.replies, (unsigned long long)st.error_replies,
      (unsigned long long)st.malformed, (unsigned long long)st.peers_finished, (unsigned long long)st.peers_dropped);
  EXPECT(st.peers_dropped == 1, "peers dropped %llu, expected the cut session", (unsigned long long)st.peers_dropped);
  EXPECT(st.malformed == 3, "malformed %llu, expected 3", (unsigned long long)st.malformed);
  stream_limits(rt, kernels, rc);
  std::printf("%s: %d failed checks\n", offload_test::failures == 0 ? "PASS" : "FAIL", offload_test::failures);
  return offload_test::failures == 0 ? 0 : 1;
}
