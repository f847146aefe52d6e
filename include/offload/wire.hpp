#pragma once
/// \file
/// The wire format. A message is
///   - a 64-byte header (magic, protocol version, kind, request id, kernel id, status,
///     product count, parts, total size, three timestamps),
///   - a product table of `product_count` 32-byte entries (element count, payload offset,
///     name offset, name length, dtype, rank),
///   - the dims of the shaped products (rank 2..8), 8-byte signed each, in table order,
///   - the product names, back to back,
///   - the payloads, each starting at a multiple of 64 bytes from the message start.
/// A message may travel whole or as its head followed by its payloads, one part each, sent
/// from where they lie (`parts` in the header says how many; docs/protocol.md section 1).
/// All integers are little-endian. `decode` validates every field against the received
/// size and the configured limits before anything reads payload bytes; a bad message is a
/// `wire_error` value, never an exception or a crash.

#include <offload/buffer.hpp>
#include <offload/product.hpp>

#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace offload {

static_assert(std::endian::native == std::endian::little, "mpi-offload assumes a little-endian host");

inline constexpr std::uint32_t wire_magic = 0x464F504D;  // bytes "MPOF"
inline constexpr std::uint16_t wire_version = 7;
inline constexpr std::size_t wire_header_size = 64;
inline constexpr std::size_t wire_entry_size = 32;
inline constexpr std::size_t wire_alignment = 64;

/// What a message is. Values are part of the wire format.
enum class message_kind : std::uint16_t {
  request = 1,      ///< transmitter → receiver: run `kernel_id` on the products
  reply = 2,        ///< receiver → transmitter: the output products
  error = 3,        ///< either way: `status` says what failed, product "message" (u8) says why
  hello = 4,        ///< transmitter → receiver: product "kernels" (u8): NAME@VERSION lines, sorted (section 3)
  hello_ack = 5,    ///< receiver → transmitter: the same; `status` ok or kernel_set_mismatch
  goodbye = 6,      ///< transmitter → receiver: no more requests will follow
  goodbye_ack = 7,  ///< receiver → transmitter: every reply to this peer has been sent
  keepalive = 8,    ///< transmitter → receiver: still here (sent when idle; no answer)
};
std::string_view to_string(message_kind k) noexcept;

/// Why a request or a handshake failed; carried in the header of `error` and `hello_ack`.
enum class status : std::uint32_t {
  ok = 0,
  malformed = 1,            ///< the message failed decoding
  too_large = 2,            ///< the message exceeds the receiver's maximum size
  unknown_kernel = 3,       ///< no kernel with that id
  bad_input = 4,            ///< the kernel rejected its inputs
  kernel_failed = 5,        ///< the kernel threw while running
  credit_exceeded = 6,      ///< the peer has more requests outstanding than it was granted
  no_handshake = 7,         ///< request before hello
  kernel_set_mismatch = 8,  ///< in hello_ack: the receiver serves none of the hello's kernels
  unexpected_kind = 9,      ///< a well-formed message of a kind this side does not accept
  busy = 10,                ///< the kernel's queue is full: the request was not queued (try elsewhere)
  expired = 11,             ///< the request's deadline passed before it could start: it was not run
  bad_output = 12,          ///< the kernel broke its own output specs (a kernel defect)
};
std::string_view to_string(status s) noexcept;

/// The specific reason a message failed to decode.
enum class wire_errc {
  truncated_header,
  bad_magic,
  bad_version,
  bad_kind,
  bad_reserved,
  too_large,
  size_mismatch,
  too_many_products,
  table_out_of_bounds,
  bad_dtype,
  bad_name,
  name_out_of_bounds,
  duplicate_name,
  overflow,
  misaligned_offset,
  payload_out_of_bounds,
  overlapping_payload,
  bad_parts,
  bad_shape,
};
std::string_view to_string(wire_errc e) noexcept;

/// A decoding failure: the code, and a text naming the field and its bad value.
struct wire_error {
  wire_errc code;
  std::string text;
};

/// Limits enforced by `decode` (and by the receiver before it receives a message).
struct wire_limits {
  std::uint64_t max_message_bytes = std::uint64_t{1} << 30;
  std::uint32_t max_products = 1024;
  std::uint32_t max_name_length = 255;
};

/// The header's three 64-bit fields at bytes 40..63. Mostly timestamps (nanoseconds of the
/// sender's steady clock, 0 when unused): in a reply or error, when the receiver took the
/// request off the wire, and when the kernel started and ended; in hello, when the transmitter
/// sent it; in hello_ack, the hello's echoed and when the receiver answered (for the clock
/// offset between the two). In a request (version 5): the request's timeout and priority
/// (request_timeout_ns, request_priority; docs/protocol.md section 2.4).
using wire_times = std::array<std::uint64_t, 3>;
/// In a request: the nanoseconds the transmitter still waits for it when it sends it (0: no
/// deadline). The receiver never starts it later than that after taking it off the wire.
inline constexpr std::size_t request_timeout_ns = 0;
/// In a request: its priority, 1 the highest; 0: the receiver's default for its kernel.
inline constexpr std::size_t request_priority = 1;

/// The fixed header fields of a message.
struct message_header {
  message_kind kind = message_kind::request;
  std::uint64_t request_id = 0;
  std::uint32_t kernel_id = 0;
  offload::status status = status::ok;
  std::uint32_t product_count = 0;
  /// 0: the message travels whole; else the number of its payloads that follow its head as
  /// separate parts (those with bytes; docs/protocol.md section 1).
  std::uint32_t parts = 0;
  std::uint64_t total_size = 0;
  wire_times times{};
};

/// Overwrites the timestamps of an encoded message (at least a header long) in place.
void write_times(std::span<std::byte> message, const wire_times& times) noexcept;
/// Overwrites the kernel id of an encoded message (at least a header long) in place: a
/// transmitter sends one request to receivers whose kernel lists number it differently.
void write_kernel_id(std::span<std::byte> message, std::uint32_t kernel_id) noexcept;

/// A decoded message: its header and views of its products. Does not own the bytes.
struct message_view {
  message_header header;
  product_views products;
};

/// Either a value or a wire_error.
template <class T> class wire_result {
 public:
  wire_result(T v) : m_v(std::move(v)) {}
  wire_result(wire_error e) : m_v(std::move(e)) {}
  bool ok() const noexcept { return m_v.index() == 0; }
  explicit operator bool() const noexcept { return ok(); }
  T& value() { return std::get<0>(m_v); }
  const T& value() const { return std::get<0>(m_v); }
  const wire_error& error() const { return std::get<1>(m_v); }

 private:
  std::variant<T, wire_error> m_v;
};

/// Validates `bytes` completely and returns views into them.
wire_result<message_view> decode(std::span<const std::byte> bytes, const wire_limits& limits = {});

/// Reads just the request id of a message that may be malformed: the id when at least the
/// header's first 16 bytes are there and the magic matches, else 0. Used to address error replies.
std::uint64_t peek_request_id(std::span<const std::byte> bytes) noexcept;

/// What a transport needs of a message's head before the rest arrives: its total size and how
/// many parts follow. nullopt unless `bytes` holds a whole header of this protocol version.
struct head_fields {
  std::uint64_t total_size;
  std::uint32_t parts;
};
std::optional<head_fields> peek_head(std::span<const std::byte> bytes) noexcept;
/// Sets the header field `parts` of an encoded message (at least a header long).
void write_parts(std::span<std::byte> message, std::uint32_t parts) noexcept;

/// The checks `decode` makes of product names (length, characters, repeats), of shapes (rank,
/// dims, their product the count) and of the product count, made on specs before they are encoded: the error decode
/// would report for the message, or nullopt. What a writer lays out is otherwise valid by construction.
std::optional<wire_error> check_specs(std::span<const product_spec> specs, const wire_limits& limits = {});

class message;

/// A message on its way out: the one type every transport sends. `head` goes first: the whole
/// message when it is contiguous (no `payloads` listed), else the bytes before the first
/// payload (header, table, names, padding), each payload then following from where it lies
/// (`payloads`: its offset in the message and its bytes), without a copy where the transport
/// can (docs/protocol.md section 1; `flatten` makes it one buffer). `storage` owns the head's
/// bytes, unless `keep_alive` holds them; `keep_alive` holds whatever else the message points
/// into until it is sent.
struct outgoing_message {
  buffer storage;
  std::span<const std::byte> head;
  std::uint64_t total_size = 0;
  std::vector<std::pair<std::uint64_t, std::span<const std::byte>>> payloads;  // in table order
  std::shared_ptr<const void> keep_alive;

  /// A contiguous message in a buffer of its own.
  static outgoing_message whole(buffer bytes);
  /// A contiguous message in bytes that `keep_alive` holds.
  static outgoing_message whole(std::span<const std::byte> bytes, std::shared_ptr<const void> keep_alive);
  bool contiguous() const noexcept { return payloads.empty(); }
  /// Payloads with bytes: the parts that follow the head when it is sent in parts.
  std::uint32_t part_count() const noexcept;
  /// Writes the whole message into `out` (total_size bytes): head, payloads, zeroed padding.
  void flatten(std::span<std::byte> out) const;
};

/// Header fields a writer sets.
struct message_info {
  message_kind kind = message_kind::request;
  std::uint64_t request_id = 0;
  std::uint32_t kernel_id = 0;
  offload::status status = status::ok;
  wire_times times{};
};

/// Lays out a message for the given product specs in one buffer: header, table and names are
/// written at once, the payloads are left for the caller to fill in place (no extra copy).
class message_writer {
 public:
  /// Total size of a message with these products.
  static std::uint64_t size_for(std::span<const product_spec> specs);
  /// Bytes of storage a writer of these products with these placed payloads uses (see below).
  static std::uint64_t storage_for(std::span<const product_spec> specs, std::span<std::byte* const> placed);

  /// `storage` is reused when its capacity suffices (see host_pool), otherwise reallocated.
  message_writer(const message_info& info, std::span<const product_spec> specs, buffer storage = {});
  /// The same, with payload `i` placed at `placed[i]` where that is not null (it must hold the
  /// product's bytes): payload(i) is that memory, and the message is finished with
  /// finish_outgoing. `storage` then holds the head only when every payload with bytes is
  /// placed, else the whole layout.
  message_writer(const message_info& info, std::span<const product_spec> specs, buffer storage,
                 std::vector<std::byte*> placed);

  std::size_t product_count() const noexcept { return m_offsets.size(); }
  /// Name, dtype, count and dims of product `i` as laid out.
  const product_spec& spec(std::size_t i) const { return m_specs.at(i); }
  /// Writable payload bytes of product `i` (uninitialised until written).
  std::span<std::byte> payload(std::size_t i);
  /// The same as elements of `T`; throws output_error when `T` is not the output's dtype.
  template <class T> std::span<T> payload_as(std::size_t i) {
    const auto& s = spec(i);
    if (dtype_of<T> != s.type)
      throw output_error("output '" + s.name + "' is " + std::string(dtype_name(s.type)) + ", written as " +
                         std::string(dtype_name(dtype_of<T>)));
    auto p = payload(i);
    return {reinterpret_cast<T*>(p.data()), p.size() / sizeof(T)};
  }
  /// Bytes before the first payload (header, table, names, padding).
  std::uint64_t head_size() const noexcept;
  /// Whether a payload with bytes was placed outside the writer's storage.
  bool gathered() const noexcept { return m_gathered; }
  /// Hands over the finished message (not for a gathered writer: std::logic_error; see finish_outgoing).
  buffer finish() &&;
  /// Hands over the finished message as a `message`: its header and product views come from
  /// the layout just written, nothing is decoded again. The specs must pass check_specs.
  message finish_message() &&;
  /// Hands over the message as it lies: contiguous when every payload is in the storage, in
  /// place; else its storage as the head, and where each payload is.
  outgoing_message finish_outgoing() &&;

 private:
  buffer m_buffer;
  std::vector<std::byte*> m_placed;  // per product: where its payload lies, or null (in m_buffer)
  bool m_gathered = false;
  std::uint64_t m_total = 0;
  std::vector<product_spec> m_specs;
  std::vector<std::pair<std::uint64_t, std::uint64_t>> m_offsets;  // offset, bytes
  std::vector<std::uint64_t> m_name_offsets;
  message_info m_info;
};

/// Lays out a message of `products` whose payloads stay where they are (no copy): the caller
/// keeps them alive, unchanged, until it is sent (set keep_alive to their owner).
outgoing_message gather(const message_info& info, const product_views& products, buffer storage = {});

/// Encodes owned products: one copy of each payload into the message.
buffer encode(const message_info& info, const product_views& products, buffer storage = {});
/// The same, handed over as a `message` (see message_writer::finish_message).
message encode_message(const message_info& info, const product_views& products, buffer storage = {});

/// Encodes an error message whose product "message" carries `text`.
buffer encode_error(std::uint64_t request_id, status s, std::string_view text, buffer storage = {});

/// The text of an error message (its "message" product), or a description of what it lacks.
std::string error_text(const message_view& msg);

/// A received message together with the buffer it was decoded from.
class message {
 public:
  message() = default;
  /// Decodes `bytes` and takes ownership; returns the wire_error when it is malformed.
  static wire_result<message> from(buffer bytes, const wire_limits& limits = {});

  const message_header& header() const noexcept { return m_view.header; }
  const product_views& products() const noexcept { return m_view.products; }
  const message_view& view() const noexcept { return m_view; }
  const buffer& bytes() const noexcept { return m_bytes; }
  /// The bytes of product `i`, writable (the message owns them): a receiver computing an
  /// output in place (kernel::in_place).
  std::span<std::byte> writable_payload(std::size_t i);
  /// All its bytes, writable: a transmitter sets a request's header fields when it sends it.
  std::span<std::byte> writable_bytes() noexcept { return m_bytes.span(); }

 private:
  friend class message_writer;
  buffer m_bytes;
  message_view m_view;
};

}  // namespace offload
