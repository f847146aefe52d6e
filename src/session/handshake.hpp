#pragma once
// The session protocol both sides speak (docs/protocol.md, section 6), in one place: the
// messages that open, keep and close a session, and the rules derived from them (keepalive
// interval, clock offset, narrowed limits). The transmitter and the receiver build and read
// these messages only through this header.
//
// The start-up handshake. hello (transmitter → receiver) and hello_ack (the answer) carry the
// protocol version (in the header, checked by decode), the sender's kernel names (product
// "kernels", u8, one name per line), its host name (product "host", u8, optional) and timestamps
// for the clock offset (header times). A hello_ack also carries the receiver's terms (product
// "terms", i64[5]): its limits, the credits it grants and its idle timeout. goodbye and
// goodbye_ack carry an empty "kernels". No MPI here: the fuzz harness drives parse_hello.

#include <offload/wire.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

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

/// hello, sent at `now_ns` (its time0) with the transmitter's kernel list.
buffer make_hello(std::string_view signature, std::uint64_t now_ns);
/// The answer to `hello`: ok when the receiver has at least one of the hello's kernels in the
/// same version (`match`), else kernel_set_mismatch; it carries
/// the receiver's list, host and terms, the hello's time0 echoed and time1 = `now_ns`.
buffer make_hello_ack(const message& hello, bool match, std::string_view signature, std::string_view host,
                      const session_terms& terms, std::uint64_t now_ns);
/// keepalive (no products), goodbye and goodbye_ack (an empty "kernels").
buffer make_keepalive();
buffer make_goodbye();
buffer make_goodbye_ack();

/// How long a transmitter may send a receiver with these terms nothing before it sends a
/// keepalive: a quarter of the idle timeout, so that three may be late or lost; zero: never.
std::chrono::milliseconds keepalive_interval(const session_terms& terms);
/// The receiver's clock minus the transmitter's, from a hello_ack received at `received_ns`:
/// zero on one host (one CLOCK_MONOTONIC), else NTP-style, the receiver having answered
/// halfway through the round trip (error at most half of it).
std::int64_t clock_offset(const message& hello_ack, std::uint64_t received_ns, bool same_host);
/// The limits a transmitter may use towards receivers with these terms: the smaller of each.
wire_limits narrowed(wire_limits ours, const wire_limits& theirs);

/// The u8 product `name` of a message as text ("" when it has none).
std::string text_product(const message& m, std::string_view name);

/// For each line of `wanted` (a kernel list; a line's index is that side's kernel id), the
/// index of the same `NAME@VERSION` line in `offered`, or -1 when `offered` lacks it (absent,
/// or another version): how the transmitter's kernel ids map onto a receiver's.
std::vector<std::int32_t> kernel_map(std::string_view wanted, std::string_view offered);

/// The kernels of `wanted` that `offered` lacks or has in another version, kernel by kernel,
/// e.g. "kernel 'edgeconv': version 2 on this transmitter, version 1 on receiver 0; kernel
/// 'mlp': only on this transmitter". Empty when `offered` has every one.
std::string kernels_not_offered(std::string_view wanted, std::string_view offered, std::string_view here,
                                std::string_view there);

}  // namespace offload::detail
