// libFuzzer harness for the wire decoder. Beyond "does not crash": whatever decode accepts must
// keep its promises (every product inside the message, payloads aligned and in order), and
// must survive a round trip: re-encoding the products gives a message that decodes to the same
// names, types, counts and bytes; and gathering them (payloads left in place, as a zero-copy
// send does) then flattening gives that message byte for byte.
#include <offload/wire.hpp>

#include "require.hpp"

#include <cstring>

using offload_fuzz::require;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace offload;
  // Small limits, so that the fuzzer reaches them; the defaults, so that it reaches the rest.
  const wire_limits small{4096, 8, 16};
  for (const auto& limits : {wire_limits{}, small}) {
    const std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(data), size);
    auto decoded = decode(bytes, limits);
    const auto id = peek_request_id(bytes);
    if (!decoded) {
      require(!decoded.error().text.empty(), "a wire_error without text");
      continue;
    }
    const auto& m = decoded.value();
    require(m.header.total_size == size, "total size differs from the input size");
    require(id == m.header.request_id, "peek_request_id differs from the header");
    require(m.products.size() == m.header.product_count, "product count differs from the header");
    require(m.products.size() <= limits.max_products, "more products than the limit");
    const auto head = peek_head(bytes);
    require(head && head->total_size == size && head->parts == m.header.parts, "peek_head differs from the header");
    const std::byte* end = bytes.data() + size;
    for (const auto& p : m.products) {
      require(!p.name.empty() && p.name.size() <= limits.max_name_length, "name length outside the limit");
      require(p.data >= bytes.data() && p.data <= end, "payload starts outside the message");
      require(p.size_bytes() <= std::size_t(end - p.data), "payload runs past the message");
      require((p.data - bytes.data()) % wire_alignment == 0, "payload not aligned");
    }
    // Round trip.
    const buffer again =
        encode({m.header.kind, m.header.request_id, m.header.kernel_id, m.header.status, m.header.times}, m.products);
    auto redecoded = decode(again.span());
    require(redecoded.ok(), "re-encoded message does not decode");
    const auto& r = redecoded.value();
    require(r.header.kind == m.header.kind && r.header.request_id == m.header.request_id &&
                r.header.kernel_id == m.header.kernel_id && r.header.status == m.header.status &&
                r.header.times == m.header.times,
            "header changed in the round trip");
    require(r.products.size() == m.products.size(), "product count changed in the round trip");
    for (std::size_t i = 0; i < r.products.size(); ++i) {
      const auto &a = m.products[i], &b = r.products[i];
      require(a.name == b.name && a.type == b.type && a.count == b.count, "product changed in the round trip");
      require(a.size_bytes() == 0 || std::memcmp(a.data, b.data, a.size_bytes()) == 0,
              "payload changed in the round trip");
    }
    const outgoing_message g =
        gather({m.header.kind, m.header.request_id, m.header.kernel_id, m.header.status, m.header.times}, m.products);
    require(g.total_size == again.size(), "gathered message size differs from the encoded one");
    std::uint32_t with_bytes = 0;
    for (const auto& p : m.products) with_bytes += p.size_bytes() > 0 ? 1 : 0;
    require(g.part_count() == with_bytes, "gathered part count differs from the payloads with bytes");
    require(m.header.parts == 0 || m.header.parts == with_bytes, "decode accepted a wrong parts field");
    buffer flat(again.size());
    g.flatten(flat.span());
    require(std::memcmp(flat.data(), again.data(), again.size()) == 0, "gathered and flattened differs from encoded");
  }
  return 0;
}
