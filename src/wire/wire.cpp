#include <offload/wire.hpp>

#include <algorithm>
#include <cstring>
#include <limits>
#include <set>
#include <sstream>

namespace offload {

namespace {

// Header layout (byte offsets).
constexpr std::size_t h_magic = 0, h_version = 4, h_kind = 6, h_request = 8, h_kernel = 16, h_status = 20, h_count = 24,
                      h_parts = 28, h_total = 32, h_times = 40;
// Table entry layout.
constexpr std::size_t e_count = 0, e_offset = 8, e_name_offset = 16, e_name_length = 20, e_dtype = 22, e_rank = 23,
                      e_reserved = 24;

/// The rank a product's shape has on the wire: 0 for flat (no dims, or one: the count).
std::size_t wire_rank(const product_spec& s) noexcept {
  return s.dims.size() <= 1 ? 0 : s.dims.size();
}

/// Bytes of the header, the table and the dims of `specs`: where the names start.
std::uint64_t names_start(std::span<const product_spec> specs) noexcept {
  std::uint64_t pos = wire_header_size + specs.size() * wire_entry_size;
  for (const auto& s : specs) pos += 8 * wire_rank(s);
  return pos;
}

template <class T> T load(const std::byte* p) noexcept {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
template <class T> void store(std::byte* p, T v) noexcept {
  std::memcpy(p, &v, sizeof v);
}

bool all_zero(const std::byte* p, std::size_t n) noexcept {
  for (std::size_t i = 0; i < n; ++i)
    if (p[i] != std::byte{0}) return false;
  return true;
}

constexpr std::uint64_t align_up(std::uint64_t v) noexcept {
  return (v + wire_alignment - 1) / wire_alignment * wire_alignment;
}

template <class... A> wire_error fail(wire_errc code, const A&... parts) {
  std::ostringstream os;
  (os << ... << parts);
  return {code, os.str()};
}

std::string hex(std::uint64_t v) {
  std::ostringstream os;
  os << "0x" << std::hex << v;
  return os.str();
}

std::string printable(std::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    if (c >= 0x20 && c < 0x7f) {
      out += char(c);
    } else {
      out += "\\x";
      out += "0123456789abcdef"[c >> 4];
      out += "0123456789abcdef"[c & 15];
    }
  }
  return out;
}

/// Checks the product count as decode does: nullopt when it is fine.
std::optional<wire_error> count_problem(std::uint64_t count, const wire_limits& limits) {
  if (count > limits.max_products)
    return fail(wire_errc::too_many_products, "header field product_count is ", count, ", the maximum is ",
                limits.max_products);
  return std::nullopt;
}

/// Checks one product name as decode does: nullopt when it is fine.
std::optional<wire_error> name_problem(std::size_t i, std::string_view name, const wire_limits& limits) {
  if (name.empty() || name.size() > limits.max_name_length)
    return fail(wire_errc::bad_name, "product ", i, ": name length ", name.size(), " is outside 1..",
                limits.max_name_length);
  for (unsigned char c : name)
    if (c < 0x21 || c > 0x7e)
      return fail(wire_errc::bad_name, "product ", i, ": name '", printable(name),
                  "' has a character outside printable ASCII");
  return std::nullopt;
}

}  // namespace

std::optional<wire_error> check_specs(std::span<const product_spec> specs, const wire_limits& limits) {
  if (auto problem = count_problem(specs.size(), limits)) return problem;
  std::set<std::string_view> names;
  for (std::size_t i = 0; i < specs.size(); ++i) {
    if (auto problem = name_problem(i, specs[i].name, limits)) return problem;
    if (!names.insert(specs[i].name).second)
      return fail(wire_errc::duplicate_name, "product ", i, ": name '", specs[i].name, "' repeats");
    if (auto problem = shape_problem(specs[i].name, specs[i].dims, specs[i].count); !problem.empty())
      return fail(wire_errc::bad_shape, problem);
  }
  return std::nullopt;
}

std::string_view to_string(message_kind k) noexcept {
  switch (k) {
    case message_kind::request: return "request";
    case message_kind::reply: return "reply";
    case message_kind::error: return "error";
    case message_kind::hello: return "hello";
    case message_kind::hello_ack: return "hello_ack";
    case message_kind::goodbye: return "goodbye";
    case message_kind::goodbye_ack: return "goodbye_ack";
    case message_kind::keepalive: return "keepalive";
  }
  return "unknown";
}

std::string_view to_string(status s) noexcept {
  switch (s) {
    case status::ok: return "ok";
    case status::malformed: return "malformed";
    case status::too_large: return "too_large";
    case status::unknown_kernel: return "unknown_kernel";
    case status::bad_input: return "bad_input";
    case status::kernel_failed: return "kernel_failed";
    case status::credit_exceeded: return "credit_exceeded";
    case status::no_handshake: return "no_handshake";
    case status::kernel_set_mismatch: return "kernel_set_mismatch";
    case status::unexpected_kind: return "unexpected_kind";
    case status::busy: return "busy";
    case status::expired: return "expired";
    case status::bad_output: return "bad_output";
  }
  return "unknown";
}

std::string_view to_string(wire_errc e) noexcept {
  switch (e) {
    case wire_errc::truncated_header: return "truncated_header";
    case wire_errc::bad_magic: return "bad_magic";
    case wire_errc::bad_version: return "bad_version";
    case wire_errc::bad_kind: return "bad_kind";
    case wire_errc::bad_reserved: return "bad_reserved";
    case wire_errc::too_large: return "too_large";
    case wire_errc::size_mismatch: return "size_mismatch";
    case wire_errc::too_many_products: return "too_many_products";
    case wire_errc::table_out_of_bounds: return "table_out_of_bounds";
    case wire_errc::bad_dtype: return "bad_dtype";
    case wire_errc::bad_name: return "bad_name";
    case wire_errc::name_out_of_bounds: return "name_out_of_bounds";
    case wire_errc::duplicate_name: return "duplicate_name";
    case wire_errc::overflow: return "overflow";
    case wire_errc::misaligned_offset: return "misaligned_offset";
    case wire_errc::payload_out_of_bounds: return "payload_out_of_bounds";
    case wire_errc::overlapping_payload: return "overlapping_payload";
    case wire_errc::bad_parts: return "bad_parts";
    case wire_errc::bad_shape: return "bad_shape";
  }
  return "unknown";
}

wire_result<message_view> decode(std::span<const std::byte> bytes, const wire_limits& limits) {
  const std::uint64_t size = bytes.size();
  const std::byte* p = bytes.data();
  if (size > limits.max_message_bytes)
    return fail(wire_errc::too_large, "message of ", size, " bytes exceeds the maximum of ", limits.max_message_bytes);
  if (size < wire_header_size)
    return fail(wire_errc::truncated_header, "message of ", size, " bytes is shorter than the ", wire_header_size,
                "-byte header");
  if (auto magic = load<std::uint32_t>(p + h_magic); magic != wire_magic)
    return fail(wire_errc::bad_magic, "header field magic is ", hex(magic), ", expected ", hex(wire_magic));
  if (auto version = load<std::uint16_t>(p + h_version); version != wire_version)
    return fail(wire_errc::bad_version, "header field version is ", version, ", this side speaks ", wire_version);
  auto kind = load<std::uint16_t>(p + h_kind);
  if (kind < 1 || kind > 8) return fail(wire_errc::bad_kind, "header field kind is ", kind, ", expected 1..8");
  auto total = load<std::uint64_t>(p + h_total);
  if (total != size)
    return fail(wire_errc::size_mismatch, "header field total_size is ", total, " but ", size, " bytes were received");
  auto count = load<std::uint32_t>(p + h_count);
  if (auto problem = count_problem(count, limits)) return *problem;
  const std::uint64_t table_end = wire_header_size + std::uint64_t{count} * wire_entry_size;  // < 2^38: no overflow
  if (table_end > size)
    return fail(wire_errc::table_out_of_bounds, "product table of ", count, " entries ends at byte ", table_end,
                ", past the message end at ", size);

  message_view out;
  out.header.kind = static_cast<message_kind>(kind);
  out.header.request_id = load<std::uint64_t>(p + h_request);
  out.header.kernel_id = load<std::uint32_t>(p + h_kernel);
  out.header.status = static_cast<status>(load<std::uint32_t>(p + h_status));
  out.header.product_count = count;
  out.header.parts = load<std::uint32_t>(p + h_parts);
  out.header.total_size = total;
  for (std::size_t i = 0; i < 3; ++i) out.header.times[i] = load<std::uint64_t>(p + h_times + 8 * i);

  // Pass 1: dtypes, reserved bytes, ranks and names; the dims follow the table, the names
  // area ends where the last name ends.
  std::vector<product_view> items(count);
  std::set<std::string_view> names;
  auto entry = [&](std::uint32_t i) { return p + wire_header_size + std::uint64_t{i} * wire_entry_size; };
  std::uint64_t dims_end = table_end;  // < 2^38 + 2^16: no overflow
  for (std::uint32_t i = 0; i < count; ++i) {
    const std::byte* e = entry(i);
    auto raw_dtype = load<std::uint8_t>(e + e_dtype);
    if (!is_valid_dtype(raw_dtype))
      return fail(wire_errc::bad_dtype, "product ", i, ": dtype ", +raw_dtype, " is unknown");
    if (!all_zero(e + e_reserved, wire_entry_size - e_reserved))
      return fail(wire_errc::bad_reserved, "product ", i, ": reserved table bytes are not zero");
    auto rank = load<std::uint8_t>(e + e_rank);
    if (rank == 1 || rank > max_rank)
      return fail(wire_errc::bad_shape, "product ", i, ": rank ", +rank, " is not 0 (flat) or 2..", max_rank);
    items[i].dims = {reinterpret_cast<const std::int64_t*>(p + dims_end), rank};  // (checked below)
    dims_end += 8 * std::uint64_t{rank};
  }
  if (dims_end > size)
    return fail(wire_errc::bad_shape, "the dims of the product table end at byte ", dims_end,
                ", past the message end at ", size);
  std::uint64_t names_end = dims_end;
  for (std::uint32_t i = 0; i < count; ++i) {
    const std::byte* e = entry(i);
    auto raw_dtype = load<std::uint8_t>(e + e_dtype);
    auto name_offset = load<std::uint32_t>(e + e_name_offset);
    auto name_length = load<std::uint16_t>(e + e_name_length);
    if (name_length == 0 || name_length > limits.max_name_length)  // before its bounds are checked
      return fail(wire_errc::bad_name, "product ", i, ": name length ", name_length, " is outside 1..",
                  limits.max_name_length);
    const std::uint64_t name_end = std::uint64_t{name_offset} + name_length;
    if (name_offset < dims_end || name_end > size)
      return fail(wire_errc::name_out_of_bounds, "product ", i, ": name at bytes ", name_offset, "..", name_end,
                  " lies outside bytes ", dims_end, "..", size);
    std::string_view name(reinterpret_cast<const char*>(p + name_offset), name_length);
    if (auto problem = name_problem(i, name, limits)) return *problem;
    if (!names.insert(name).second)
      return fail(wire_errc::duplicate_name, "product ", i, ": name '", name, "' repeats");
    names_end = std::max(names_end, name_end);
    items[i].name = name;
    items[i].type = static_cast<dtype>(raw_dtype);
  }
  // Pass 2: payloads, in order, after the names, inside the message, without overflow.
  std::uint64_t previous_end = names_end;
  std::uint32_t with_bytes = 0;
  for (std::uint32_t i = 0; i < count; ++i) {
    const std::byte* e = entry(i);
    auto& item = items[i];
    auto elements = load<std::uint64_t>(e + e_count);
    auto offset = load<std::uint64_t>(e + e_offset);
    if (!item.dims.empty())  // (flat: nothing to check)
      if (auto problem = shape_problem(item.name, item.dims, elements); !problem.empty())
        return fail(wire_errc::bad_shape, problem);
    const std::uint64_t esize = dtype_size(item.type);
    if (elements > std::numeric_limits<std::uint64_t>::max() / esize)
      return fail(wire_errc::overflow, "product '", item.name, "': element count ", elements, " times ", esize,
                  " bytes overflows");
    const std::uint64_t nbytes = elements * esize;
    if (offset % wire_alignment != 0)
      return fail(wire_errc::misaligned_offset, "product '", item.name, "': offset ", offset, " is not a multiple of ",
                  wire_alignment);
    if (offset > std::numeric_limits<std::uint64_t>::max() - nbytes)
      return fail(wire_errc::overflow, "product '", item.name, "': offset ", offset, " + length ", nbytes,
                  " overflows");
    if (offset + nbytes > size)
      return fail(wire_errc::payload_out_of_bounds, "product '", item.name, "': payload at bytes ", offset, "..",
                  offset + nbytes, " runs past the message end at ", size);
    if (offset < previous_end)
      return fail(wire_errc::overlapping_payload, "product '", item.name, "': payload at byte ", offset,
                  " overlaps the names or the payload before it (which end at ", previous_end, ")");
    previous_end = offset + nbytes;
    item.count = elements;
    item.data = p + offset;
    with_bytes += nbytes > 0 ? 1 : 0;
  }
  if (out.header.parts != 0 && out.header.parts != with_bytes)
    return fail(wire_errc::bad_parts, "header field parts is ", out.header.parts, ", but ", with_bytes,
                " payload(s) have bytes (expected 0 or ", with_bytes, ")");
  out.products = product_views(std::move(items));
  return out;
}

void write_times(std::span<std::byte> message, const wire_times& times) noexcept {
  if (message.size() < wire_header_size) return;
  for (std::size_t i = 0; i < 3; ++i) store(message.data() + h_times + 8 * i, times[i]);
}

void write_kernel_id(std::span<std::byte> message, std::uint32_t kernel_id) noexcept {
  if (message.size() < wire_header_size) return;
  store(message.data() + h_kernel, kernel_id);
}

std::uint64_t peek_request_id(std::span<const std::byte> bytes) noexcept {
  if (bytes.size() < h_request + 8) return 0;
  if (load<std::uint32_t>(bytes.data() + h_magic) != wire_magic) return 0;
  return load<std::uint64_t>(bytes.data() + h_request);
}

std::optional<head_fields> peek_head(std::span<const std::byte> bytes) noexcept {
  if (bytes.size() < wire_header_size) return std::nullopt;
  const std::byte* p = bytes.data();
  if (load<std::uint32_t>(p + h_magic) != wire_magic || load<std::uint16_t>(p + h_version) != wire_version)
    return std::nullopt;
  return head_fields{load<std::uint64_t>(p + h_total), load<std::uint32_t>(p + h_parts)};
}

void write_parts(std::span<std::byte> message, std::uint32_t parts) noexcept {
  if (message.size() >= wire_header_size) store(message.data() + h_parts, parts);
}

outgoing_message outgoing_message::whole(buffer bytes) {
  outgoing_message m;
  m.head = bytes.span();  // (a buffer keeps its data where it is when it moves)
  m.total_size = bytes.size();
  m.storage = std::move(bytes);
  return m;
}

outgoing_message outgoing_message::whole(std::span<const std::byte> bytes, std::shared_ptr<const void> keep_alive) {
  outgoing_message m;
  m.head = bytes;
  m.total_size = bytes.size();
  m.keep_alive = std::move(keep_alive);
  return m;
}

std::uint32_t outgoing_message::part_count() const noexcept {
  std::uint32_t n = 0;
  for (const auto& [offset, bytes] : payloads) n += bytes.empty() ? 0 : 1;
  return n;
}

void outgoing_message::flatten(std::span<std::byte> out) const {
  if (out.size() != total_size) throw std::length_error("outgoing_message::flatten: wrong output size");
  if (!head.empty()) std::memcpy(out.data(), head.data(), head.size());
  std::uint64_t pos = head.size();
  for (const auto& [offset, bytes] : payloads) {
    std::memset(out.data() + pos, 0, static_cast<std::size_t>(offset - pos));
    if (!bytes.empty()) std::memcpy(out.data() + offset, bytes.data(), bytes.size());
    pos = offset + bytes.size();
  }
  std::memset(out.data() + pos, 0, static_cast<std::size_t>(total_size - pos));
}

std::uint64_t message_writer::size_for(std::span<const product_spec> specs) {
  std::uint64_t pos = names_start(specs);
  for (const auto& s : specs) pos += s.name.size();
  for (const auto& s : specs) pos = align_up(pos) + s.size_bytes();
  return pos;
}

message_writer::message_writer(const message_info& info, std::span<const product_spec> specs, buffer storage)
    : message_writer(info, specs, std::move(storage), {}) {}

message_writer::message_writer(const message_info& info, std::span<const product_spec> specs, buffer storage,
                               std::vector<std::byte*> placed)
    : m_buffer(std::move(storage)), m_placed(std::move(placed)), m_specs(specs.begin(), specs.end()), m_info(info) {
  m_placed.resize(specs.size(), nullptr);
  for (std::size_t i = 0; i < specs.size(); ++i) {
    if (specs[i].size_bytes() == 0) m_placed[i] = nullptr;
    if (m_placed[i] != nullptr) m_gathered = true;
  }
  const std::uint64_t total = size_for(specs);
  m_total = total;
  const std::uint64_t stored = storage_for(specs, m_placed);
  m_buffer.resize(static_cast<std::size_t>(stored));
  std::byte* p = m_buffer.data();
  std::uint64_t pos = names_start(specs);
  std::memset(p, 0, static_cast<std::size_t>(pos));
  store(p + h_magic, wire_magic);
  store(p + h_version, wire_version);
  store(p + h_kind, static_cast<std::uint16_t>(info.kind));
  store(p + h_request, info.request_id);
  store(p + h_kernel, info.kernel_id);
  store(p + h_status, static_cast<std::uint32_t>(info.status));
  store(p + h_count, static_cast<std::uint32_t>(specs.size()));
  store(p + h_total, total);
  write_times({p, wire_header_size}, info.times);

  std::uint64_t dims_at = wire_header_size + specs.size() * wire_entry_size;
  for (const auto& s : specs) {
    if (wire_rank(s) > 0) std::memcpy(p + dims_at, s.dims.data(), 8 * s.dims.size());
    dims_at += 8 * wire_rank(s);
  }
  auto& name_offsets = m_name_offsets;
  for (const auto& s : specs) {
    name_offsets.push_back(pos);
    std::memcpy(p + pos, s.name.data(), s.name.size());
    pos += s.name.size();
  }
  m_offsets.reserve(specs.size());
  for (std::size_t i = 0; i < specs.size(); ++i) {
    const auto& s = specs[i];
    std::uint64_t offset = align_up(pos);
    if (offset <= stored) std::memset(p + pos, 0, offset - pos);  // padding is deterministic
    std::byte* e = p + wire_header_size + i * wire_entry_size;
    store(e + e_count, s.count);
    store(e + e_offset, offset);
    store(e + e_name_offset, static_cast<std::uint32_t>(name_offsets[i]));
    store(e + e_name_length, static_cast<std::uint16_t>(s.name.size()));
    store(e + e_dtype, static_cast<std::uint8_t>(s.type));
    store(e + e_rank, static_cast<std::uint8_t>(wire_rank(s)));
    m_offsets.emplace_back(offset, s.size_bytes());
    pos = offset + s.size_bytes();
  }
  if (pos < stored) std::memset(p + pos, 0, stored - pos);
}

std::uint64_t message_writer::storage_for(std::span<const product_spec> specs, std::span<std::byte* const> placed) {
  bool any = false, all = true;  // payloads with bytes placed elsewhere: any, every one
  std::uint64_t head = names_start(specs);
  for (std::size_t i = 0; i < specs.size(); ++i) {
    const bool elsewhere = i < placed.size() && placed[i] != nullptr && specs[i].size_bytes() > 0;
    any = any || elsewhere;
    all = all && (elsewhere || specs[i].size_bytes() == 0);
    head += specs[i].name.size();
  }
  const std::uint64_t total = size_for(specs);
  return any && all ? std::min(align_up(head), total) : total;
}

std::uint64_t message_writer::head_size() const noexcept {
  return m_offsets.empty() ? m_total : m_offsets.front().first;
}

buffer message_writer::finish() && {
  if (m_gathered) throw std::logic_error("message_writer::finish: payloads lie elsewhere; use finish_outgoing");
  return std::move(m_buffer);
}

outgoing_message message_writer::finish_outgoing() && {
  bool in_storage = m_buffer.size() == m_total;  // every payload written in the storage, in place?
  for (std::size_t i = 0; i < m_offsets.size() && in_storage; ++i)
    in_storage =
        m_placed[i] == nullptr || m_offsets[i].second == 0 || m_placed[i] == m_buffer.data() + m_offsets[i].first;
  if (in_storage) return outgoing_message::whole(std::move(m_buffer));
  outgoing_message g;
  g.head = m_buffer.span().first(static_cast<std::size_t>(head_size()));
  g.total_size = m_total;
  g.payloads.reserve(m_offsets.size());
  for (std::size_t i = 0; i < m_offsets.size(); ++i) {
    const auto [offset, bytes] = m_offsets[i];
    const std::byte* at = m_placed[i] != nullptr ? m_placed[i] : m_buffer.data() + offset;
    g.payloads.emplace_back(offset, std::span<const std::byte>(at, static_cast<std::size_t>(bytes)));
  }
  g.storage = std::move(m_buffer);
  return g;
}

std::span<std::byte> message_writer::payload(std::size_t i) {
  auto [offset, bytes] = m_offsets.at(i);
  std::byte* at = m_placed[i] != nullptr ? m_placed[i] : m_buffer.data() + offset;
  return {at, static_cast<std::size_t>(bytes)};
}

message message_writer::finish_message() && {
  if (m_gathered) throw std::logic_error("message_writer::finish_message: payloads lie elsewhere");
  message m;
  auto& h = m.m_view.header;
  h.kind = m_info.kind;
  h.request_id = m_info.request_id;
  h.kernel_id = m_info.kernel_id;
  h.status = m_info.status;
  h.product_count = static_cast<std::uint32_t>(m_specs.size());
  h.total_size = m_buffer.size();
  h.times = m_info.times;
  std::vector<product_view> items;
  items.reserve(m_specs.size());
  const std::byte* p = m_buffer.data();  // the bytes stay where they are when the buffer moves
  std::uint64_t dims_at = wire_header_size + m_specs.size() * wire_entry_size;  // (as the constructor laid out)
  for (std::size_t i = 0; i < m_specs.size(); ++i) {
    const auto& s = m_specs[i];
    const std::span<const std::int64_t> dims(reinterpret_cast<const std::int64_t*>(p + dims_at), wire_rank(s));
    dims_at += 8 * wire_rank(s);
    items.push_back({std::string_view(reinterpret_cast<const char*>(p + m_name_offsets[i]), s.name.size()), s.type,
                     s.count, p + m_offsets[i].first, dims});
  }
  m.m_view.products = product_views(std::move(items));
  m.m_bytes = std::move(m_buffer);
  return m;
}

namespace {
message_writer write_products(const message_info& info, const product_views& products, buffer storage) {
  std::vector<product_spec> specs;
  specs.reserve(products.size());
  for (const auto& p : products) specs.push_back(p.spec());
  message_writer w(info, specs, std::move(storage));
  for (std::size_t i = 0; i < products.size(); ++i)
    if (products[i].size_bytes() > 0) std::memcpy(w.payload(i).data(), products[i].data, products[i].size_bytes());
  return w;
}
}  // namespace

outgoing_message gather(const message_info& info, const product_views& products, buffer storage) {
  std::vector<product_spec> specs;
  std::vector<std::byte*> placed;
  specs.reserve(products.size());
  placed.reserve(products.size());
  for (const auto& p : products) {
    specs.push_back(p.spec());
    // The writer only reads placed payloads here (nobody calls payload() on it).
    placed.push_back(const_cast<std::byte*>(p.data));
  }
  return message_writer(info, specs, std::move(storage), std::move(placed)).finish_outgoing();
}

buffer encode(const message_info& info, const product_views& products, buffer storage) {
  return write_products(info, products, std::move(storage)).finish();
}

message encode_message(const message_info& info, const product_views& products, buffer storage) {
  return write_products(info, products, std::move(storage)).finish_message();
}

buffer encode_error(std::uint64_t request_id, status s, std::string_view text, buffer storage) {
  product_spec spec{"message", dtype::u8, text.size()};
  message_writer w({message_kind::error, request_id, 0, s}, std::span(&spec, 1), std::move(storage));
  if (!text.empty()) std::memcpy(w.payload(0).data(), text.data(), text.size());
  return std::move(w).finish();
}

std::string error_text(const message_view& msg) {
  const auto* m = msg.products.find("message");
  if (m == nullptr || m->type != dtype::u8) return "(error message without text)";
  return std::string(reinterpret_cast<const char*>(m->data), static_cast<std::size_t>(m->count));
}

std::span<std::byte> message::writable_payload(std::size_t i) {
  const auto& p = m_view.products[i];
  // The view points into m_bytes, which this message owns.
  return {m_bytes.data() + (p.data - m_bytes.data()), static_cast<std::size_t>(p.size_bytes())};
}

wire_result<message> message::from(buffer bytes, const wire_limits& limits) {
  auto decoded = decode(bytes.span(), limits);
  if (!decoded) return decoded.error();
  message m;
  m.m_bytes = std::move(bytes);
  m.m_view = std::move(decoded.value());
  return m;
}

}  // namespace offload
