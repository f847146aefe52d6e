#pragma once
// The start-up handshake. hello (transmitter → receiver) and hello_ack (the answer) carry the
// protocol version (in the header, checked by decode), the sender's kernel names (product
// "kernels", u8, one name per line), its host name (product "host", u8, optional) and timestamps
// for the clock offset (header times). A hello_ack also carries the receiver's terms (product
// "terms", i64[5]): its limits, the credits it grants and its idle timeout. goodbye and
// goodbye_ack carry an empty "kernels". No MPI here: the fuzz harness drives parse_hello.

#include <offload/wire.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace offload::detail {

/// What a receiver grants each transmitter; sent in hello_ack.
struct session_terms {
  wire_limits limits;                 ///< the receiver's maximum message size, products per message, name length
  std::uint32_t credits = 0;          ///< requests a transmitter may have outstanding there
  std::uint64_t idle_timeout_ms = 0;  ///< silence after which the receiver drops a peer (0: never)
};

/// A hello, hello_ack, goodbye or goodbye_ack, checked beyond what decode checks.
struct hello_info {
  std::string signature;  ///< kernel names, one per line
  std::string host;
  std::optional<session_terms> terms;  ///< always set in a valid hello_ack
  std::string error;                   ///< why the message is not a valid handshake message ("" when it is)
  bool ok() const noexcept { return error.empty(); }
};

buffer encode_hello(message_kind kind, status s, std::string_view signature, std::string_view host = {},
                    const session_terms* terms = nullptr);

/// Validates the products of a decoded handshake message: exactly the products its kind
/// carries, with the right types and shapes; kernel names and host in printable ASCII, one
/// name per line; terms within range. Never throws for any input.
hello_info parse_hello(const message& m);

/// The u8 product `name` of a message as text ("" when it has none).
std::string text_product(const message& m, std::string_view name);

/// "a\nb\n" -> "a, b".
std::string signature_list(std::string_view signature);

}  // namespace offload::detail
