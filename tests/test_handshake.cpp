#include "src/session/handshake.hpp"

#include <catch2/catch.hpp>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>

using namespace offload;
using detail::parse_hello;
using detail::session_terms;

namespace {

message decoded(const buffer& b) {
  buffer copy(b.size());
  std::memcpy(copy.data(), b.data(), b.size());
  auto m = message::from(std::move(copy));
  REQUIRE(m.ok());
  return std::move(m.value());
}

const session_terms terms{{1 << 20, 64, 32}, 8, 60000};

buffer with_products(message_kind kind, std::vector<product> ps) {
  return encode({kind, 0, 0, status::ok}, product_views(ps));
}

product text(std::string name, std::string_view t) {
  return product::make(std::move(name), std::vector<std::uint8_t>(t.begin(), t.end()));
}

}  // namespace

TEST_CASE("hello and hello_ack round trip with host and terms") {
  const auto hello =
      parse_hello(decoded(detail::encode_hello(message_kind::hello, status::ok, "echo\nmlp\n", "node1")));
  REQUIRE(hello.ok());
  CHECK(hello.signature == "echo\nmlp\n");
  CHECK(hello.host == "node1");
  CHECK_FALSE(hello.terms);
  const auto ack =
      parse_hello(decoded(detail::encode_hello(message_kind::hello_ack, status::ok, "echo\n", "gpu", &terms)));
  REQUIRE(ack.ok());
  REQUIRE(ack.terms);
  CHECK(ack.terms->limits.max_message_bytes == 1 << 20);
  CHECK(ack.terms->limits.max_products == 64);
  CHECK(ack.terms->limits.max_name_length == 32);
  CHECK(ack.terms->credits == 8);
  CHECK(ack.terms->idle_timeout_ms == 60000);
  CHECK(parse_hello(decoded(detail::encode_hello(message_kind::goodbye, status::ok, {}))).ok());
}

TEST_CASE("bad handshake messages say what is wrong") {
  auto error_of = [](const buffer& b) { return parse_hello(decoded(b)).error; };
  CHECK(error_of(detail::encode_hello(message_kind::hello_ack, status::ok, "echo\n", "gpu")) ==
        "hello_ack lacks the receiver's terms");
  CHECK(error_of(with_products(message_kind::hello, {})) == "product 'kernels' is missing");
  CHECK(error_of(with_products(message_kind::request, {text("kernels", "echo\n")})) ==
        "a 'request' message is not part of the handshake");
  CHECK(error_of(with_products(message_kind::hello, {text("kernels", "echo\n"), text("extra", "x")})) ==
        "a 'hello' message does not carry a product 'extra'");
  CHECK(error_of(with_products(message_kind::hello, {text("kernels", "echo")})) ==
        "kernel list does not end with a newline");
  CHECK(error_of(with_products(message_kind::hello, {text("kernels", "echo\n\nmlp\n")})) ==
        "kernel list has an empty line");
  CHECK(error_of(with_products(message_kind::hello, {text("kernels", "ec ho\n")})) ==
        "kernel list has a name outside printable ASCII");
  CHECK(error_of(with_products(message_kind::hello, {text("kernels", "echo\n"), text("host", "a\tb")})) ==
        "host name has a character outside printable ASCII");
  CHECK(
      error_of(with_products(message_kind::hello, {text("kernels", "echo\n"), text("host", std::string(300, 'h'))})) ==
      "host name of 300 bytes exceeds 255");
  CHECK(error_of(with_products(message_kind::hello, {product::make("kernels", std::vector<float>{1})})) ==
        "product 'kernels' has dtype f32");
  CHECK(error_of(with_products(
            message_kind::hello,
            {text("kernels", "echo\n"), product::make("terms", std::vector<std::int64_t>{1, 2, 3, 4, 5})})) ==
        "a 'hello' message does not carry a product 'terms'");
  auto ack_with = [&](std::vector<std::int64_t> t) {
    return error_of(
        with_products(message_kind::hello_ack, {text("kernels", "echo\n"), product::make("terms", std::move(t))}));
  };
  CHECK(ack_with({1 << 20, 64, 32, 8}) == "terms have 4 values, expected 5");
  CHECK(ack_with({1 << 20, 64, 32, 0, 0}) == "terms: credits are 0");
  CHECK(ack_with({10, 64, 32, 8, 0}) == "terms: maximum message size 10 is below 96 bytes");
  CHECK(ack_with({1 << 20, 0, 32, 8, 0}) == "terms: maximum products per message is 0");
  CHECK(ack_with({1 << 20, 64, 70000, 8, 0}) == "terms: maximum name length 70000 is outside 1..65535");
  CHECK(ack_with({1 << 20, 64, 32, -1, 0}) == "terms: value 3 is -1, outside its range");
  CHECK(ack_with({1 << 20, 64, 32, std::int64_t{1} << 33, 0}) == "terms: value 3 is 8589934592, outside its range");
}

TEST_CASE("the fuzz seed corpus and every regression input are handled") {
  // Seeds must decode; regressions (inputs that once broke a harness) must not crash.
  std::size_t seeds = 0, regressions = 0;
  for (const char* dir : {"corpus/decode", "corpus/handshake", "regressions"}) {
    const auto path = std::filesystem::path(OFFLOAD_FUZZ_DIR) / dir;
    if (!std::filesystem::exists(path)) continue;
    for (const auto& f : std::filesystem::directory_iterator(path)) {
      if (f.path().extension() != ".bin") continue;
      std::ifstream in(f.path(), std::ios::binary);
      const std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      buffer b(bytes.size());
      if (!bytes.empty()) std::memcpy(b.data(), bytes.data(), bytes.size());
      auto m = message::from(std::move(b));
      const bool seed = std::string(dir).rfind("corpus", 0) == 0;
      INFO(f.path().string());
      if (seed) {
        REQUIRE(m.ok());
        ++seeds;
      } else {
        ++regressions;
      }
      if (m && std::string(dir) == "corpus/handshake") CHECK(parse_hello(m.value()).ok());
      if (m) static_cast<void>(parse_hello(m.value()));
    }
  }
  CHECK(seeds >= 10);
  INFO("regression inputs: " << regressions);
}

TEST_CASE("the session's messages and rules") {
  const auto hello = decoded(detail::make_hello("echo\n", 1000));
  CHECK(hello.header().kind == message_kind::hello);
  CHECK(hello.header().times[0] == 1000);
  REQUIRE(parse_hello(hello).ok());

  const auto ack = decoded(detail::make_hello_ack(hello, false, "mlp\n", "gpu", terms, 5000));
  CHECK(ack.header().kind == message_kind::hello_ack);
  CHECK(ack.header().status == status::kernel_set_mismatch);
  CHECK(ack.header().times[0] == 1000);  // echoed
  CHECK(ack.header().times[1] == 5000);
  const auto info = parse_hello(ack);
  REQUIRE(info.ok());
  CHECK(info.signature == "mlp\n");
  CHECK(info.terms->credits == terms.credits);

  // Sent at 1000, answered at the receiver's 5000, back at 1400: the receiver's clock is 4800 ahead.
  CHECK(detail::clock_offset(ack, 1400, false) == 5000 - 1200);
  CHECK(detail::clock_offset(ack, 1400, true) == 0);
  CHECK(detail::keepalive_interval(terms) == std::chrono::milliseconds(15000));
  CHECK(detail::keepalive_interval(session_terms{}) == std::chrono::milliseconds(0));
  const auto n = detail::narrowed({1 << 30, 10, 255}, {1 << 20, 64, 32});
  CHECK((n.max_message_bytes == (1 << 20) && n.max_products == 10 && n.max_name_length == 32));

  CHECK(decoded(detail::make_keepalive()).header().kind == message_kind::keepalive);
  CHECK(decoded(detail::make_keepalive()).products().empty());
  CHECK(decoded(detail::make_goodbye()).header().kind == message_kind::goodbye);
  CHECK(decoded(detail::make_goodbye_ack()).header().kind == message_kind::goodbye_ack);
}

TEST_CASE("a receiver may offer more kernels: ids map by name and version, what it lacks is named") {
  const std::string tx = "affine@1\necho@1\nmlp@1\n", rx = "affine@2\nclustering@1\necho@1\nsynthetic@1\n";
  // Ours -> theirs: affine has another version there, echo is their id 2, mlp is not there.
  CHECK(detail::kernel_map(tx, rx) == std::vector<std::int32_t>{-1, 2, -1});
  CHECK(detail::kernels_not_offered(tx, rx, "this transmitter", "receiver 0") ==
        "kernel 'affine': version 1 on this transmitter, version 2 on receiver 0; kernel 'mlp': only on this "
        "transmitter");
  // A receiver with more kernels than the transmitter lacks none of them.
  CHECK(detail::kernel_map("echo@1\n", rx) == std::vector<std::int32_t>{2});
  CHECK(detail::kernels_not_offered("echo@1\n", rx, "a", "b").empty());
  CHECK(detail::kernels_not_offered(tx, tx, "a", "b").empty());
  CHECK(detail::kernel_map("", rx).empty());
  // A peer of protocol version 2 sent names without versions.
  CHECK(detail::kernels_not_offered("echo@1\n", "echo\n", "here", "there") ==
        "kernel 'echo': version 1 on here, no version on there");
  CHECK(detail::kernel_map("echo@1\n", "echo\n") == std::vector<std::int32_t>{-1});
}
