// A transmitter facing a receiver that lies: rank 0 speaks the protocol by hand and answers
// five echo requests with wrong values, a wrong shape, an error, garbage, and silence.
// The transmitter must deliver every result once: the wrong values as they came (and
// compare_with_cpu, i.e. --validate, must catch them), the other four through the CPU fallback
// with the right reason. Run with 2 ranks.
#include <offload/mpi.hpp>
#include <offload/runtime.hpp>
#include <offload/transmitter.hpp>

#include "finish.hpp"
#include "raw.hpp"
#include "src/session/handshake.hpp"

#include <cstring>

using namespace offload;

namespace {

message receive(runtime& rt) {
  return offload_test::raw_receive(rt, 1);
}
void send(runtime& rt, const buffer& b) {
  offload_test::raw_send(rt, 1, b);
}

void liar(runtime& rt, const kernel_registry& kernels) {
  auto hello = receive(rt);
  EXPECT(hello.header().kind == message_kind::hello, "expected hello");
  const detail::session_terms terms{{}, 8, 0};
  send(rt, detail::encode_hello(message_kind::hello_ack, status::ok, kernels.signature(), {}, &terms));
  for (int n = 0; n < 5; ++n) {
    auto req = receive(rt);
    const auto id = req.header().request_id;
    const auto& v = req.products()[0];
    if (n == 0) {  // wrong values
      std::vector<std::uint8_t> wrong(v.count, 7);
      send(rt, encode({message_kind::reply, id, 0, status::ok},
                      product_views(
                          {product_view{v.name, v.type, v.count, reinterpret_cast<const std::byte*>(wrong.data())}})));
    } else if (n == 1) {  // wrong shape
      std::vector<std::uint8_t> shorter(v.count - 1, 1);
      send(rt, encode({message_kind::reply, id, 0, status::ok},
                      product_views({product_view{v.name, v.type, v.count - 1,
                                                  reinterpret_cast<const std::byte*>(shorter.data())}})));
    } else if (n == 2) {
      send(rt, encode_error(id, status::kernel_failed, "the GPU fell off the bus"));
    } else if (n == 3) {  // garbage that still names the request
      auto b = encode_error(id, status::ok, "x");
      b.data()[4] = std::byte{77};  // version
      send(rt, b);
    }  // n == 4: silence
  }
  auto bye = receive(rt);
  EXPECT(bye.header().kind == message_kind::goodbye, "expected goodbye");
  send(rt, detail::encode_hello(message_kind::goodbye_ack, status::ok, {}));
}

void victim(runtime& rt, const kernel_registry& kernels) {
  transmitter_config cfg;
  cfg.timeout = std::chrono::milliseconds(500);
  transmitter tx(rt, kernels, mpi_link{{0}}, cfg);
  const auto& echo = *kernels.find("echo");
  std::vector<std::vector<product>> inputs;
  std::vector<std::future<result>> fs;
  for (int n = 0; n < 5; ++n) {
    inputs.push_back(echo.make_inputs({std::uint64_t(n), 100, 0}));
    fs.push_back(tx.submit("echo", product_views(inputs.back())));
  }
  std::vector<result> rs;
  for (auto& f : fs) rs.push_back(f.get());
  EXPECT(rs[0].receiver() == 0 && rs[0].fallback() == fallback_reason::none, "wrong values not delivered as remote");
  auto diff = compare_with_cpu(echo, product_views(inputs[0]), rs[0].products());
  EXPECT(diff.find("expected") != std::string::npos, "validation missed the wrong values: '%s'", diff.c_str());
  std::printf("wrong values caught: %s\n", diff.c_str());
  const char* reasons[] = {"", "reply product 0 is 'payload' u8[99], expected 'payload' u8[100]",
                           "kernel_failed: the GPU fell off the bus", "malformed reply: header field version is 77",
                           ""};
  for (int n = 1; n < 5; ++n) {
    const auto& r = rs[std::size_t(n)];
    const auto want = n == 4 ? fallback_reason::timeout : fallback_reason::error_reply;
    EXPECT(r.fallback() == want, "request %d: fallback %s", n, std::string(to_string(r.fallback())).c_str());
    EXPECT(r.remote_error().find(reasons[n]) != std::string::npos, "request %d: reason '%s'", n,
           r.remote_error().c_str());
    EXPECT(compare_with_cpu(echo, product_views(inputs[std::size_t(n)]), r.products()).empty(),
           "request %d: fallback result wrong", n);
    std::printf("request %d: %s %s\n", n, std::string(to_string(r.fallback())).c_str(), r.remote_error().c_str());
  }
  tx.close();
  auto s = tx.stats();
  EXPECT(s.remote == 1 && s.fallback_error == 3 && s.fallback_timeout == 1, "stats remote %llu error %llu timeout %llu",
         (unsigned long long)s.remote, (unsigned long long)s.fallback_error, (unsigned long long)s.fallback_timeout);
}

}  // namespace

int main() {
  return offload_test::run_test(2, [](runtime& rt) {
    if (rt.rank() == 0)
      liar(rt, kernel_registry::builtin());
    else
      victim(rt, kernel_registry::builtin());
  });
}
