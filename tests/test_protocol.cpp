// docs/protocol.md against the code: the tables of the specification are parsed out of the
// document and every row is checked against what the code writes and decodes, so that the
// document cannot drift from the implementation unnoticed.
#include "src/session/handshake.hpp"
#include "src/transport/grpc_endpoint.hpp"
#include "src/transport/mpi_endpoint.hpp"

#include <offload/kernel.hpp>
#include <offload/wire.hpp>

#include <catch2/catch.hpp>

#include <cstring>
#include <fstream>
#include <map>
#include <sstream>

using namespace offload;

namespace {

std::string document() {
  std::ifstream f(OFFLOAD_DOCS_DIR "/protocol.md");
  REQUIRE(f);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

/// The rows of the first Markdown table after `heading` (a line that starts with it), cells trimmed.
std::vector<std::vector<std::string>> table_after(const std::string& doc, const std::string& heading,
                                                  std::size_t nth = 0) {
  std::size_t at = doc.find("\n" + heading);
  REQUIRE(at != std::string::npos);
  std::istringstream in(doc.substr(at + 1));
  std::vector<std::vector<std::string>> rows;
  std::string line;
  bool in_table = false;
  std::getline(in, line);  // the heading
  while (std::getline(in, line)) {
    const bool row = line.starts_with("|");
    if (!row && in_table) {
      if (nth == 0) break;
      --nth;
      rows.clear();
      in_table = false;
      continue;
    }
    if (!row) continue;
    in_table = true;
    if (line.find("---") != std::string::npos) continue;
    std::vector<std::string> cells;
    std::size_t start = 1;
    for (std::size_t bar; (bar = line.find('|', start)) != std::string::npos; start = bar + 1) {
      std::string cell = line.substr(start, bar - start);
      cell.erase(0, cell.find_first_not_of(' '));
      cell.erase(cell.find_last_not_of(' ') + 1);
      cells.push_back(cell);
    }
    rows.push_back(cells);
  }
  REQUIRE(rows.size() > 1);
  rows.erase(rows.begin());  // the column names
  return rows;
}

std::uint64_t read_le(const std::byte* p, std::size_t size) {
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < size; ++i) v |= std::uint64_t(std::to_integer<std::uint8_t>(p[i])) << (8 * i);
  return v;
}

/// Backticked identifiers in a table cell, in order (std::regex would do, but GCC 12 at -O1
/// under ASan reports a false -Wmaybe-uninitialized inside it).
std::vector<std::string> backticked(const std::string& cell) {
  std::vector<std::string> out;
  for (std::size_t open = cell.find('`'); open != std::string::npos; open = cell.find('`', open + 1)) {
    const std::size_t close = cell.find('`', open + 1);
    if (close == std::string::npos) break;
    const std::string word = cell.substr(open + 1, close - open - 1);
    const bool identifier =
        !word.empty() &&
        word.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") == std::string::npos;
    if (identifier) out.push_back(word);
    open = close;
  }
  return out;
}

}  // namespace

TEST_CASE("protocol.md: the header table is where the code writes each field") {
  const std::vector<product_spec> specs{{"a", dtype::f32, 3}, {"bb", dtype::u8, 5}};
  message_writer w({message_kind::hello_ack,
                    0x1122334455667788ull,
                    0xA1B2C3D4u,
                    status::unexpected_kind,
                    {0x0101010101010101ull, 0x0202020202020202ull, 0x0303030303030303ull}},
                   specs);
  buffer b = std::move(w).finish();
  write_parts(b.span(), 2);  // what a sender in parts sets (section 1)
  const std::map<std::string, std::uint64_t> expected{{"magic", wire_magic},
                                                      {"version", wire_version},
                                                      {"kind", 5},
                                                      {"request_id", 0x1122334455667788ull},
                                                      {"kernel_id", 0xA1B2C3D4u},
                                                      {"status", 9},
                                                      {"product_count", 2},
                                                      {"parts", 2},
                                                      {"total_size", b.size()},
                                                      {"time0", 0x0101010101010101ull},
                                                      {"time1", 0x0202020202020202ull},
                                                      {"time2", 0x0303030303030303ull}};
  std::size_t next = 0;
  for (const auto& row : table_after(document(), "### 2.1 Header")) {
    INFO("row: " << row.at(2));
    const auto offset = std::stoul(row.at(0)), size = std::stoul(row.at(1));
    CHECK(offset == next);  // the rows tile the header without gaps
    next = offset + size;
    REQUIRE(expected.contains(row.at(2)));
    CHECK(read_le(b.data() + offset, size) == expected.at(row.at(2)));
  }
  CHECK(next == wire_header_size);
  // The document's magic, in hex, is the code's.
  CHECK(document().find("`0x464F504D`") != std::string::npos);
  CHECK(wire_magic == 0x464F504Du);
}

TEST_CASE("protocol.md: the product entry table is where the code writes each field") {
  // "first" f64 [7] (flat), "second" i32 [2,1,3] (rank 3: its dims right after the table).
  const std::vector<product_spec> specs{{"first", dtype::f64, 7}, {"second", dtype::i32, 6, {2, 1, 3}}};
  message_writer w({message_kind::request, 1, 0, status::ok}, specs);
  const std::byte* payload_at = w.payload(1).data();  // the bytes move with the buffer
  const buffer b = std::move(w).finish();
  const std::byte* e = b.data() + wire_header_size + wire_entry_size;  // entry 1: "second"
  const auto payload = static_cast<std::uint64_t>(payload_at - b.data());
  const auto dims_at = wire_header_size + 2 * wire_entry_size;
  const auto name_offset = dims_at + 3 * 8 + std::string("first").size();
  const std::map<std::string, std::uint64_t> expected{{"count", 6},
                                                      {"payload_offset", payload},
                                                      {"name_offset", name_offset},
                                                      {"name_length", 6},
                                                      {"dtype", 3},
                                                      {"rank", 3},
                                                      {"reserved", 0}};
  std::size_t next = 0;
  for (const auto& row : table_after(document(), "### 2.2 Product table entry")) {
    INFO("row: " << row.at(2));
    const auto offset = std::stoul(row.at(0)), size = std::stoul(row.at(1));
    CHECK(offset == next);
    next = offset + size;
    REQUIRE(expected.contains(row.at(2)));
    for (std::size_t i = 0; i < size; i += 8)  // (fields of up to 8 bytes)
      CHECK(read_le(e + offset + i, std::min<std::size_t>(8, size - i)) == (i == 0 ? expected.at(row.at(2)) : 0));
  }
  CHECK(next == wire_entry_size);
  CHECK(std::string(reinterpret_cast<const char*>(b.data() + name_offset), 6) == "second");
  // The dims, 8 bytes each, little-endian, where the document puts them; entry 0 has rank 0.
  CHECK(read_le(b.data() + dims_at, 8) == 2);
  CHECK(read_le(b.data() + dims_at + 8, 8) == 1);
  CHECK(read_le(b.data() + dims_at + 16, 8) == 3);
  CHECK(read_le(b.data() + wire_header_size + 23, 1) == 0);
  CHECK(document().find("`64 + 32 k + 8 × Σ_{j<i} rank_j`") != std::string::npos);
}

TEST_CASE("protocol.md: the dtype, kind and status codes are the code's") {
  const auto doc = document();
  std::size_t dtypes = 0;
  for (const auto& row : table_after(doc, "### 2.2 Product table entry", 1)) {
    INFO("dtype " << row.at(0));
    const auto code = std::stoul(row.at(1));
    REQUIRE(is_valid_dtype(static_cast<std::uint8_t>(code)));
    CHECK(dtype_name(static_cast<dtype>(code)) == row.at(0));
    CHECK(dtype_size(static_cast<dtype>(code)) == std::stoul(row.at(2)));
    CHECK(static_cast<dtype>(code) == all_dtypes.at(dtypes++));  // every dtype, in code order
  }
  CHECK(dtypes == all_dtypes.size());
  CHECK_FALSE(is_valid_dtype(static_cast<std::uint8_t>(all_dtypes.size() + 1)));
  // Each row of the table under `heading` names the code's value of enum E in column 1.
  const auto codes_match = [&]<class E>(const std::string& heading, E) {
    std::size_t rows = 0;
    for (const auto& row : table_after(doc, heading)) {
      INFO(heading << ": " << row.at(0));
      CHECK(to_string(static_cast<E>(std::stoul(row.at(1)))) == row.at(0));
      ++rows;
    }
    return rows;
  };
  CHECK(codes_match("## 3. Message kinds", message_kind{}) == 8);
  CHECK(codes_match("## 4. Status codes", status{}) == 13);
}

TEST_CASE("protocol.md: the decoding checks name the code's error codes") {
  std::size_t n = 0;
  for (const auto& row : table_after(document(), "### 2.5 Decoding order")) {
    INFO("check " << row.at(0) << ": " << row.at(1));
    CHECK(std::stoul(row.at(0)) == ++n);
    bool known = false;
    for (int c = 0; c <= int(wire_errc::bad_shape); ++c) known = known || to_string(wire_errc(c)) == row.at(2);
    CHECK(known);
  }
  CHECK(n == 23);
}

TEST_CASE("protocol.md: a hello_ack's terms are in the documented order") {
  const detail::session_terms t{{1000, 22, 33}, 44, 55};
  auto bytes = detail::encode_hello(message_kind::hello_ack, status::ok, "echo\n", "host", &t);
  auto m = message::from(std::move(bytes));
  REQUIRE(m.ok());
  const auto* terms = m.value().products().find("terms");
  REQUIRE(terms != nullptr);
  CHECK(terms->type == dtype::i64);
  const std::map<std::string, std::int64_t> expected{{"max_message_bytes", 1000},
                                                     {"max_products", 22},
                                                     {"max_name_length", 33},
                                                     {"credits", 44},
                                                     {"idle_timeout_ms", 55}};
  const auto rows = table_after(document(), "- **terms**");
  REQUIRE(rows.size() == terms->count);
  for (const auto& row : rows) {
    INFO("term " << row.at(1));
    const auto index = std::stoul(row.at(0));
    std::int64_t v = 0;
    std::memcpy(&v, terms->data + 8 * index, 8);
    REQUIRE(expected.contains(row.at(1)));
    CHECK(v == expected.at(row.at(1)));
  }
  const auto info = detail::parse_hello(m.value());
  REQUIRE(info.ok());
  CHECK(info.terms->idle_timeout_ms == 55);
}

TEST_CASE("protocol.md: the built-in kernels take and give what the document says") {
  const auto doc = document();
  const auto& registry = kernel_registry::builtin();
  std::string listed = "`";
  for (const auto& n : registry.names()) listed += n + "@" + std::string(registry.find(n)->version()) + "\\n";
  CHECK(doc.find(listed + "`") != std::string::npos);
  std::size_t rows = 0;
  for (const auto& row : table_after(doc, "### 5.2 The built-in kernels")) {
    INFO("kernel " << row.at(0));
    const kernel* k = registry.find(row.at(0));
    REQUIRE(k != nullptr);
    ++rows;
    if (row.at(0) == "echo") continue;  // any products
    const auto inputs = k->make_inputs({1, 4, 3});
    std::vector<std::string> in_names;
    for (const auto& p : inputs) in_names.push_back(p.name);
    CHECK(backticked(row.at(1)) == in_names);
    std::vector<product_view> views;
    for (const auto& p : inputs) views.push_back(p.view());
    std::vector<std::string> out_names;
    for (const auto& s : k->output_specs(product_views(views))) out_names.push_back(s.name);
    CHECK(backticked(row.at(2)) == out_names);
    for (const auto& p : inputs)
      CHECK(row.at(1).find("`" + p.name + "` " + std::string(dtype_name(p.type))) != std::string::npos);
  }
  CHECK(rows == registry.size());
}

TEST_CASE("protocol.md: the carriers' tag and method, and the layout size rule") {
  const auto doc = document();
  CHECK(detail::offload_tag == 0x0ff1);
  CHECK(doc.find("tag `0x0ff1`") != std::string::npos);
  CHECK(doc.find(std::string("`") + detail::grpc_session_method + "`") != std::string::npos);
  // pos = 64 + 32k + 8 sum(ranks) + sum(names); then per product: round_up(pos, 64) + bytes.
  const std::vector<product_spec> specs{
      {"x", dtype::f64, 3}, {"iterations", dtype::i64, 1}, {"empty", dtype::u8, 0}, {"m", dtype::bf16, 8, {2, 2, 2}}};
  std::uint64_t pos = 64 + 32 * specs.size() + 8 * 3 + 1 + 10 + 5 + 1;
  for (const auto& s : specs) pos = (pos + 63) / 64 * 64 + s.size_bytes();
  CHECK(message_writer::size_for(specs) == pos);
}
