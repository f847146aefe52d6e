// libFuzzer harness for the start-up handshake: what a receiver does with a hello and a
// transmitter with a hello_ack, short of MPI: decode, then parse_hello. Whatever parse_hello
// accepts must be well-formed: printable names one per line, a hello_ack with sane terms,
// and encoding what it parsed must parse back to the same.
#include "src/session/handshake.hpp"

#include "require.hpp"

#include <cstring>

using offload_fuzz::require;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace offload;
  buffer bytes(size);
  if (size > 0) std::memcpy(bytes.data(), data, size);
  auto decoded = message::from(std::move(bytes));
  if (!decoded) return 0;
  const auto& m = decoded.value();
  const auto hello = detail::parse_hello(m);
  if (!hello.ok()) return 0;
  const auto kind = m.header().kind;
  require(kind == message_kind::hello || kind == message_kind::hello_ack || kind == message_kind::goodbye ||
              kind == message_kind::goodbye_ack,
          "accepted a kind outside the handshake");
  require(hello.signature.empty() || hello.signature.back() == '\n', "signature without its final newline");
  for (char c : hello.signature) require(c == '\n' || (c > 0x20 && c < 0x7f), "unprintable kernel name");
  require(kind != message_kind::hello_ack || hello.terms.has_value(), "hello_ack accepted without terms");
  if (hello.terms) {
    require(hello.terms->credits > 0 && hello.terms->limits.max_products > 0, "terms out of range");
    require(detail::kernels_not_offered(hello.signature, hello.signature, "a", "b").empty(),
            "a kernel list lacks its own kernels");
    for (const auto id : detail::kernel_map(hello.signature, hello.signature))
      require(id >= 0, "a kernel list does not map onto itself");
  }
  // Round trip through our own encoder.
  const auto again =
      detail::encode_hello(kind, m.header().status, hello.signature, hello.host, hello.terms ? &*hello.terms : nullptr);
  buffer copy(again.size());
  std::memcpy(copy.data(), again.data(), again.size());
  auto redecoded = message::from(std::move(copy));
  require(redecoded.ok(), "re-encoded handshake does not decode");
  const auto back = detail::parse_hello(redecoded.value());
  require(back.ok() && back.signature == hello.signature && back.host == hello.host &&
              back.terms.has_value() == hello.terms.has_value(),
          "handshake changed in the round trip");
  return 0;
}
