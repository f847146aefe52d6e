#include <offload/wire.hpp>

#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <limits>

using namespace offload;

namespace {

// Header and table offsets, written out independently of the implementation.
constexpr std::size_t off_magic = 0, off_version = 4, off_kind = 6, off_count = 24, off_total = 32, off_parts = 28,
                      off_times = 40;
constexpr std::size_t e_count = 0, e_offset = 8, e_name_offset = 16, e_name_length = 20, e_dtype = 22, e_rank = 23;

template <class T> void poke(buffer& b, std::size_t at, T v) {
  std::memcpy(b.data() + at, &v, sizeof v);
}
template <class T> T peek(const buffer& b, std::size_t at) {
  T v;
  std::memcpy(&v, b.data() + at, sizeof v);
  return v;
}
std::size_t entry(std::size_t i) {
  return wire_header_size + i * wire_entry_size;
}

/// A two-product request: "a" f32[3], "bb" i64[2].
buffer sample() {
  std::vector<product> ps{product::make("a", std::vector<float>{1.5f, -2.0f, 3.25f}),
                          product::make("bb", std::vector<std::int64_t>{7, -9})};
  return encode({message_kind::request, 42, 3, status::ok}, product_views(ps));
}

wire_errc error_of(const buffer& b, const wire_limits& limits = {}) {
  auto r = decode(b.span(), limits);
  REQUIRE_FALSE(r.ok());
  INFO(r.error().text);
  return r.error().code;
}

}  // namespace

TEST_CASE("round trip of every dtype, with the header fields and 64-byte alignment") {
  std::vector<product> ps{
      product::make("f32", std::vector<float>{0.0f, -1.5f, std::numeric_limits<float>::max()}),
      product::make("f64", std::vector<double>{3.141592653589793, -0.0, 1e-300}),
      product::make("i32", std::vector<std::int32_t>{std::numeric_limits<std::int32_t>::min(), 0, 17}),
      product::make("i64", std::vector<std::int64_t>{std::numeric_limits<std::int64_t>::max(), -5}),
      product::make("u8", std::vector<std::uint8_t>{0, 255, 128, 1, 2}),
      product::make("empty", std::vector<float>{}),
  };
  auto bytes = encode({message_kind::reply, 0xDEADBEEFCAFEull, 7, status::ok}, product_views(ps));
  REQUIRE(bytes.size() == message_writer::size_for(std::vector<product_spec>{
                              ps[0].spec(), ps[1].spec(), ps[2].spec(), ps[3].spec(), ps[4].spec(), ps[5].spec()}));
  auto r = decode(bytes.span());
  REQUIRE(r.ok());
  const auto& m = r.value();
  CHECK(m.header.kind == message_kind::reply);
  CHECK(m.header.request_id == 0xDEADBEEFCAFEull);
  CHECK(m.header.kernel_id == 7);
  CHECK(m.header.product_count == 6);
  CHECK(m.header.total_size == bytes.size());
  REQUIRE(m.products.size() == ps.size());
  for (std::size_t i = 0; i < ps.size(); ++i) {
    const auto& v = m.products[i];
    CHECK(v.name == ps[i].name);
    CHECK(v.type == ps[i].type);
    CHECK(v.count == ps[i].count);
    CHECK((v.data - bytes.data()) % 64 == 0);
    CHECK((ps[i].bytes.empty() || std::memcmp(v.data, ps[i].bytes.data(), ps[i].bytes.size()) == 0));
  }
  CHECK(m.products.get<double>("f64")[0] == 3.141592653589793);
  CHECK(m.products.get<std::uint8_t>("u8")[1] == 255);
  CHECK_THROWS_AS(m.products.get<float>("f64"), input_error);
  CHECK_THROWS_AS(m.products.at("nope"), input_error);
  CHECK(compare_products(product_views(ps), m.products).empty());
}

TEST_CASE("the layout matches the documented format") {
  auto b = sample();
  CHECK(peek<std::uint32_t>(b, off_magic) == 0x464F504D);
  CHECK(std::memcmp(b.data(), "MPOF", 4) == 0);
  CHECK(peek<std::uint16_t>(b, off_version) == wire_version);
  CHECK(peek<std::uint16_t>(b, off_kind) == 1);
  CHECK(peek<std::uint32_t>(b, off_count) == 2);
  CHECK(peek<std::uint64_t>(b, off_total) == b.size());
  // Names right after the two table entries, payloads at 128 and 192.
  CHECK(peek<std::uint32_t>(b, entry(0) + e_name_offset) == 128);
  CHECK(peek<std::uint16_t>(b, entry(1) + e_name_length) == 2);
  CHECK(peek<std::uint64_t>(b, entry(0) + e_offset) == 192);
  CHECK(peek<std::uint64_t>(b, entry(1) + e_offset) == 256);
  CHECK(b.size() == 256 + 16);
  CHECK(peek_request_id(b.span()) == 42);
  write_times(b.span(), {1, 2, 0xFFFFFFFFFFull});
  CHECK(peek<std::uint64_t>(b, off_times + 8) == 2);
  auto r = decode(b.span());
  REQUIRE(r.ok());
  CHECK(r.value().header.times == wire_times{1, 2, 0xFFFFFFFFFFull});
}

TEST_CASE("malformed messages return their specific error") {
  SECTION("truncated header") {
    auto b = sample();
    b.resize(40);
    CHECK(error_of(b) == wire_errc::truncated_header);
    CHECK(decode({b.data(), 0}).error().code == wire_errc::truncated_header);
  }
  SECTION("bad magic") {
    auto b = sample();
    poke<std::uint32_t>(b, off_magic, 0x12345678);
    CHECK(error_of(b) == wire_errc::bad_magic);
    CHECK(decode(b.span()).error().text.find("0x12345678") != std::string::npos);
    CHECK(peek_request_id(b.span()) == 0);
  }
  SECTION("bad version") {
    auto b = sample();
    poke<std::uint16_t>(b, off_version, 99);
    CHECK(error_of(b) == wire_errc::bad_version);
    CHECK(decode(b.span()).error().text.find("99") != std::string::npos);
  }
  SECTION("bad kind") {
    auto b = sample();
    poke<std::uint16_t>(b, off_kind, 0);
    CHECK(error_of(b) == wire_errc::bad_kind);
    poke<std::uint16_t>(b, off_kind, 9);
    CHECK(error_of(b) == wire_errc::bad_kind);
  }
  SECTION("parts other than 0 or the payloads with bytes") {
    auto b = sample();
    const auto with_bytes = [&] {
      std::uint32_t n = 0;
      const auto decoded = decode(b.span());
      for (const auto& p : decoded.value().products) n += p.size_bytes() > 0 ? 1 : 0;
      return n;
    }();
    REQUIRE(with_bytes > 0);
    poke<std::uint32_t>(b, off_parts, with_bytes);
    REQUIRE(decode(b.span()).ok());
    CHECK(decode(b.span()).value().header.parts == with_bytes);
    poke<std::uint32_t>(b, off_parts, with_bytes + 1);
    CHECK(error_of(b) == wire_errc::bad_parts);
    CHECK(decode(b.span()).error().text.find("parts is " + std::to_string(with_bytes + 1)) != std::string::npos);
    poke<std::uint32_t>(b, off_parts, 0xffffffffu);
    CHECK(error_of(b) == wire_errc::bad_parts);
  }
  SECTION("total size differs from the received size") {
    auto b = sample();
    poke<std::uint64_t>(b, off_total, b.size() + 1);
    CHECK(error_of(b) == wire_errc::size_mismatch);
    auto c = sample();
    c.resize(c.size() - 1);
    CHECK(error_of(c) == wire_errc::size_mismatch);
  }
  SECTION("oversized") {
    auto b = sample();
    wire_limits small;
    small.max_message_bytes = 100;
    CHECK(error_of(b, small) == wire_errc::too_large);
  }
  SECTION("product count past the table") {
    auto b = sample();
    poke<std::uint32_t>(b, off_count, 9);
    CHECK(error_of(b) == wire_errc::table_out_of_bounds);
    poke<std::uint32_t>(b, off_count, 0xFFFFFFFFu);
    CHECK(error_of(b) == wire_errc::too_many_products);
    wire_limits one;
    one.max_products = 1;
    CHECK(error_of(sample(), one) == wire_errc::too_many_products);
  }
  SECTION("unknown dtype") {
    auto b = sample();
    poke<std::uint8_t>(b, entry(1) + e_dtype, 0);
    CHECK(error_of(b) == wire_errc::bad_dtype);
    poke<std::uint8_t>(b, entry(1) + e_dtype, 14);
    CHECK(error_of(b) == wire_errc::bad_dtype);
  }
  SECTION("names: empty, too long, out of bounds, not printable, repeated") {
    auto b = sample();
    poke<std::uint16_t>(b, entry(0) + e_name_length, 0);
    CHECK(error_of(b) == wire_errc::bad_name);
    wire_limits short_names;
    short_names.max_name_length = 1;
    CHECK(error_of(sample(), short_names) == wire_errc::bad_name);
    auto c = sample();
    poke<std::uint32_t>(c, entry(0) + e_name_offset, 10);  // inside the header
    CHECK(error_of(c) == wire_errc::name_out_of_bounds);
    poke<std::uint32_t>(c, entry(0) + e_name_offset, 0xFFFFFFF0u);
    CHECK(error_of(c) == wire_errc::name_out_of_bounds);
    auto d = sample();
    poke<std::uint8_t>(d, 128, 0x07);
    CHECK(error_of(d) == wire_errc::bad_name);
    auto e = sample();
    poke<std::uint32_t>(e, entry(1) + e_name_offset, 128);  // both called "a"
    poke<std::uint16_t>(e, entry(1) + e_name_length, 1);
    CHECK(error_of(e) == wire_errc::duplicate_name);
  }
  SECTION("offset or length past the end") {
    auto b = sample();
    poke<std::uint64_t>(b, entry(1) + e_offset, 1024);
    CHECK(error_of(b) == wire_errc::payload_out_of_bounds);
    auto c = sample();
    poke<std::uint64_t>(c, entry(1) + e_count, 3);
    CHECK(error_of(c) == wire_errc::payload_out_of_bounds);
  }
  SECTION("misaligned offset") {
    auto b = sample();
    poke<std::uint64_t>(b, entry(1) + e_offset, 200);
    CHECK(error_of(b) == wire_errc::misaligned_offset);
  }
  SECTION("arithmetic overflow") {
    auto b = sample();
    poke<std::uint64_t>(b, entry(1) + e_count, std::uint64_t{1} << 62);  // x 8 bytes overflows
    CHECK(error_of(b) == wire_errc::overflow);
    auto c = sample();
    poke<std::uint64_t>(c, entry(1) + e_count, 8);  // 64 bytes from an aligned offset 63 bytes below 2^64
    poke<std::uint64_t>(c, entry(1) + e_offset, std::numeric_limits<std::uint64_t>::max() - 63);
    CHECK(error_of(c) == wire_errc::overflow);
  }
  SECTION("overlapping payloads") {
    auto b = sample();
    poke<std::uint64_t>(b, entry(1) + e_offset, 192);
    CHECK(error_of(b) == wire_errc::overlapping_payload);
    auto c = sample();
    poke<std::uint64_t>(c, entry(0) + e_offset, 128);  // over the names
    CHECK(error_of(c) == wire_errc::overlapping_payload);
  }
}

TEST_CASE("every truncation and every single-byte corruption of the header and table is caught or harmless") {
  const auto good = sample();
  for (std::size_t n = 0; n < good.size(); ++n) {
    auto r = decode({good.data(), n});
    CHECK_FALSE(r.ok());
  }
  // Flip each byte of the header, table and names: decoding must never read out of bounds
  // (run under ASan to see it) and either fail or still describe an in-bounds message.
  for (std::size_t i = 0; i < 192; ++i) {
    buffer b(good.size());
    std::memcpy(b.data(), good.data(), good.size());
    b.data()[i] ^= std::byte{0xA5};
    auto r = decode(b.span());
    if (r.ok())
      for (const auto& p : r.value().products) CHECK(p.data + p.size_bytes() <= b.data() + b.size());
  }
}

TEST_CASE("error messages carry their text") {
  auto b = encode_error(5, status::bad_input, "input 'x' is missing");
  auto r = decode(b.span());
  REQUIRE(r.ok());
  CHECK(r.value().header.kind == message_kind::error);
  CHECK(r.value().header.status == status::bad_input);
  CHECK(r.value().header.request_id == 5);
  CHECK(error_text(r.value()) == "input 'x' is missing");
}

TEST_CASE("compare_products reports the first difference") {
  std::vector<product> a{product::make("x", std::vector<float>{1.0f, 2.0f})};
  std::vector<product> b{product::make("x", std::vector<float>{1.0f, 2.001f})};
  CHECK_FALSE(compare_products(product_views(a), product_views(b)).empty());
  CHECK(compare_products(product_views(a), product_views(b), 1e-2).empty());
  std::vector<product> c{product::make("y", std::vector<float>{1.0f, 2.0f})};
  CHECK(compare_products(product_views(a), product_views(c)).find("name") != std::string::npos);
  std::vector<product> d{product::make("x", std::vector<std::int32_t>{1, 2})};
  CHECK(compare_products(product_views(a), product_views(d)).find("dtype") != std::string::npos);
}

TEST_CASE("dtype helpers") {
  CHECK(dtype_size(dtype::f64) == 8);
  CHECK(dtype_name(dtype::i32) == "i32");
  CHECK(parse_dtype("u8") == dtype::u8);
  CHECK(parse_dtype("bool") == dtype::boolean);
  CHECK_FALSE(parse_dtype("f8").has_value());
  CHECK_FALSE(is_valid_dtype(0));
  CHECK_FALSE(is_valid_dtype(14));
  // Every dtype: a name that parses back, a size, a valid wire value.
  for (auto t : all_dtypes) {
    CHECK(parse_dtype(dtype_name(t)) == t);
    CHECK(dtype_size(t) > 0);
    CHECK(is_valid_dtype(static_cast<std::uint8_t>(t)));
  }
}

TEST_CASE("float16 and bfloat16 convert as IEEE 754 and numpy do") {
  // Bit patterns from the binary16 format: 1.0 = 0x3c00, -2.0 = 0xc000, 65504 (max) = 0x7bff,
  // 2^-14 (min normal) = 0x0400, 2^-24 (min subnormal) = 0x0001, inf = 0x7c00.
  CHECK(float16::from_float(1.0f).bits == 0x3c00);
  CHECK(float16::from_float(-2.0f).bits == 0xc000);
  CHECK(float16::from_float(65504.0f).bits == 0x7bff);
  CHECK(float16::from_float(65520.0f).bits == 0x7c00);  // the tie rounds to even: inf
  CHECK(float16::from_float(0x1p-14f).bits == 0x0400);
  CHECK(float16::from_float(0x1p-24f).bits == 0x0001);
  CHECK(float16::from_float(0x1p-25f).bits == 0x0000);         // a tie: to even, zero
  CHECK(float16::from_float(0x1.8p-25f).bits == 0x0001);       // above the tie
  CHECK(float16::from_float(1.0f + 0x1p-11f).bits == 0x3c00);  // tie between 1 and 1+2^-10: even
  CHECK(float16::from_float(1.0f + 0x1.8p-11f).bits == 0x3c01);
  CHECK(float16{0x3555}.to_float() == 0.333251953125f);
  CHECK(float16{0x0001}.to_float() == 0x1p-24f);
  CHECK(float16{0x8000}.to_float() == 0.0f);
  CHECK(std::isinf(float16{0xfc00}.to_float()));
  CHECK(std::isnan(float16::from_float(std::numeric_limits<float>::quiet_NaN()).to_float()));
  for (std::uint32_t b = 0; b < 0x10000; ++b) {  // every finite half survives the round trip
    const float16 h{static_cast<std::uint16_t>(b)};
    if ((b & 0x7c00) != 0x7c00) REQUIRE(float16::from_float(h.to_float()).bits == h.bits);
  }
  CHECK(bfloat16::from_float(1.0f).bits == 0x3f80);
  CHECK(bfloat16::from_float(3.140625f).bits == 0x4049);
  CHECK(bfloat16::from_float(1.0f + 0x1p-8f).bits == 0x3f80);  // a tie: to even
  CHECK(bfloat16::from_float(1.0f + 0x1.8p-8f).bits == 0x3f81);
  CHECK(bfloat16{0xc0a0}.to_float() == -5.0f);
  CHECK(std::isnan(bfloat16::from_float(std::numeric_limits<float>::quiet_NaN()).to_float()));
}

TEST_CASE("shaped products of every dtype make the round trip; flat and one dim are the same on the wire") {
  std::vector<product> ps{
      product::make("bool", std::vector<std::uint8_t>{1, 0, 1, 1, 0, 0}),
      product::make("i8", std::vector<std::int8_t>{-128, 127, 0, 1, -1, 5}, {2, 3}),
      product::make("i16", std::vector<std::int16_t>{-32768, 32767, 3, 4}, {2, 1, 2}),
      product::make("u16", std::vector<std::uint16_t>{65535, 0}, {1, 2}),
      product::make("u32", std::vector<std::uint32_t>{4000000000u, 1, 2, 3, 4, 5, 6, 7}, {2, 2, 2}),
      product::make("u64", std::vector<std::uint64_t>{~std::uint64_t{0}, 0, 9}, {3}),
      product::make("f16", std::vector<float16>{float16::from_float(1.5f), float16::from_float(-0.25f)}, {2, 1}),
      product::make("bf16", std::vector<bfloat16>{bfloat16::from_float(2.0f), bfloat16::from_float(-3.0f)}, {1, 2}),
      product::make("empty", std::vector<float>{}, {0, 16}),
      product::make("eight", std::vector<double>(256, 0.5), {2, 2, 2, 2, 2, 2, 2, 2}),
  };
  ps[0].type = dtype::boolean;  // the bytes of six bools
  ps[0].reshape({3, 2});
  auto bytes = encode({message_kind::request, 1, 2, status::ok}, product_views(ps));
  std::vector<product_spec> specs;
  for (const auto& p : ps) specs.push_back(p.spec());
  CHECK(bytes.size() == message_writer::size_for(specs));
  auto r = decode(bytes.span());
  REQUIRE(r.ok());
  const auto& got = r.value().products;
  REQUIRE(got.size() == ps.size());
  CHECK(compare_products(product_views(ps), got).empty());
  for (std::size_t i = 0; i < ps.size(); ++i) {
    INFO(ps[i].name);
    CHECK(got[i].type == ps[i].type);
    CHECK(got[i].shape() == ps[i].spec().shape());
    if (!ps[i].bytes.empty()) CHECK(std::memcmp(got[i].data, ps[i].bytes.data(), ps[i].bytes.size()) == 0);
  }
  CHECK(got[5].dims.empty());  // [3]: one dim is written flat (rank 0)
  CHECK(got.get<std::int8_t>("i8")[0] == -128);
  CHECK(got.get<bool>("bool")[2]);
  CHECK(got.get<float16>("f16")[1].to_float() == -0.25f);
  CHECK(got.get<bfloat16>("bf16")[1].to_float() == -3.0f);
  // The message the writer hands over has the same shapes without decoding.
  const message m = encode_message({message_kind::request, 1, 2, status::ok}, product_views(ps));
  for (std::size_t i = 0; i < ps.size(); ++i) CHECK(m.products()[i].shape() == got[i].shape());
  // A flat product costs nothing more than in version 6: no dims on the wire.
  const std::vector<product> flat{product::make("x", std::vector<float>(6, 1.0f))};
  const std::vector<product> one{product::make("x", std::vector<float>(6, 1.0f), {6})};
  CHECK(encode({}, product_views(flat)).size() == encode({}, product_views(one)).size());
  // Two dims take 16 bytes before the names: after a 32-byte name, one more 64-byte line.
  const std::string name(32, 'n');
  CHECK(message_writer::size_for(std::vector<product_spec>{{name, dtype::f32, 6, {2, 3}}}) ==
        message_writer::size_for(std::vector<product_spec>{{name, dtype::f32, 6}}) + 64);
}

TEST_CASE("decode refuses a bad shape, naming it") {
  // "m" f32 [2,3] then "n" u8 flat: the dims (two int64) follow the table at byte 128.
  std::vector<product> ps{product::make("m", std::vector<float>(6, 1.0f), {2, 3}),
                          product::make("n", std::vector<std::uint8_t>{1, 2})};
  const auto fresh = [&] { return encode({}, product_views(ps)); };
  const auto good = fresh();
  const std::size_t dims_at = wire_header_size + 2 * wire_entry_size;
  REQUIRE(peek<std::int64_t>(good, dims_at) == 2);
  REQUIRE(peek<std::int64_t>(good, dims_at + 8) == 3);
  REQUIRE(peek<std::uint8_t>(good, entry(0) + e_rank) == 2);
  REQUIRE(peek<std::uint8_t>(good, entry(1) + e_rank) == 0);
  const auto text_of = [](const buffer& b) {
    auto r = decode(b.span());
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == wire_errc::bad_shape);
    return r.error().text;
  };
  auto b = fresh();
  poke<std::int64_t>(b, dims_at + 8, 4);  // [2,4] for 6 elements
  CHECK(text_of(b) == "product 'm': shape [2,4] holds 8 elements, the product has 6");
  b = fresh();
  poke<std::int64_t>(b, dims_at, -2);
  CHECK(text_of(b).find("negative") != std::string::npos);
  b = fresh();
  poke<std::int64_t>(b, dims_at, std::int64_t{1} << 40);
  poke<std::int64_t>(b, dims_at + 8, std::int64_t{1} << 40);  // the product overflows
  CHECK(text_of(b).find("too many elements") != std::string::npos);
  b = fresh();
  poke<std::uint8_t>(b, entry(0) + e_rank, 1);
  CHECK(text_of(b) == "product 0: rank 1 is not 0 (flat) or 2..8");
  poke<std::uint8_t>(b, entry(0) + e_rank, 9);
  CHECK(text_of(b) == "product 0: rank 9 is not 0 (flat) or 2..8");
  b = fresh();
  poke<std::uint8_t>(b, entry(1) + e_rank, 8);  // 64 more bytes of dims: over the names
  CHECK(error_of(b) == wire_errc::name_out_of_bounds);
  // Dims past the end of a message that is only a header and a table.
  std::vector<product> lone{product::make("q", std::vector<float>{}, {0, 0})};
  auto c = encode({}, product_views(lone));
  poke<std::uint8_t>(c, entry(0) + e_rank, 8);
  buffer cut(wire_header_size + wire_entry_size + 16);
  std::memcpy(cut.data(), c.data(), cut.size());
  poke<std::uint64_t>(cut, off_total, cut.size());
  CHECK(text_of(cut).find("past the message end") != std::string::npos);
}

TEST_CASE("products refuse a shape that does not fit, and compare shapes where both have one") {
  CHECK_THROWS_AS(product::make("x", std::vector<float>(6), {4, 2}), input_error);
  CHECK_THROWS_AS(product::make("x", std::vector<float>(6), {-1, 6}), input_error);
  CHECK_THROWS_AS(product::make("x", std::vector<float>(1), {1, 1, 1, 1, 1, 1, 1, 1, 1}), input_error);
  auto p = product::make("x", std::vector<float>(6));
  CHECK_THROWS_WITH(p.reshape({5}), "product 'x': shape [5] holds 5 elements, the product has 6");
  p.reshape({3, 2});
  CHECK(p.spec().shape() == dims_t{3, 2});
  std::vector<product> a{p}, flat{product::make("x", std::vector<float>(6))},
      other{product::make("x", std::vector<float>(6), {2, 3})};
  CHECK(compare_products(product_views(a), product_views(flat)).empty());
  CHECK(compare_products(product_views(a), product_views(other)) == "product 'x': expected shape [3,2], got [2,3]");
  std::vector<product> h1{product::make("h", std::vector<float16>{float16::from_float(1.0f)})};
  std::vector<product> h2{product::make("h", std::vector<float16>{float16::from_float(1.001f)})};
  CHECK_FALSE(compare_products(product_views(h1), product_views(h2)).empty());
  CHECK(compare_products(product_views(h1), product_views(h2), 1e-2).empty());
}

TEST_CASE("a writer hands over the same message decode would make of its bytes") {
  const std::vector<float> f{1.5f, -2.0f, 3.25f};
  const std::vector<std::int64_t> i{7, -9};
  const std::vector<std::uint8_t> none;
  const std::vector<product> owned{product::make("a", f), product::make("bb", i), product::make("empty", none)};
  const message_info info{message_kind::reply, 42, 3, status::ok, {1, 2, 3}};
  const message m = encode_message(info, product_views(owned));
  const auto d = decode(m.bytes().span());
  REQUIRE(d.ok());
  const auto& h = m.header();
  const auto& dh = d.value().header;
  CHECK((h.kind == dh.kind && h.request_id == dh.request_id && h.kernel_id == dh.kernel_id && h.status == dh.status &&
         h.product_count == dh.product_count && h.total_size == dh.total_size && h.times == dh.times));
  REQUIRE(m.products().size() == d.value().products.size());
  for (std::size_t k = 0; k < m.products().size(); ++k) {
    const auto& a = m.products()[k];
    const auto& b = d.value().products[k];
    CHECK((a.name == b.name && a.type == b.type && a.count == b.count && a.data == b.data));
  }
  CHECK(m.products().get<float>("a")[2] == 3.25f);
  CHECK(m.products().get<std::int64_t>("bb")[1] == -9);
}

TEST_CASE("check_specs finds what decode would refuse in names, shapes and counts") {
  const wire_limits limits{1 << 20, 2, 4};
  const auto code = [&](std::vector<product_spec> specs) {
    auto problem = check_specs(specs, limits);
    return problem ? std::string(to_string(problem->code)) : std::string("ok");
  };
  CHECK(code({{"ok", dtype::f32, 1}}) == "ok");
  CHECK(code({{"a", dtype::f32, 1}, {"b", dtype::f32, 1}, {"c", dtype::f32, 1}}) == "too_many_products");
  CHECK(code({{"", dtype::f32, 1}}) == "bad_name");
  CHECK(code({{"toolong", dtype::f32, 1}}) == "bad_name");
  CHECK(code({{"a b", dtype::f32, 1}}) == "bad_name");
  CHECK(code({{"a\x7f", dtype::f32, 1}}) == "bad_name");
  CHECK(code({{"x", dtype::f32, 1}, {"x", dtype::i32, 2}}) == "duplicate_name");
  CHECK(code({{"s", dtype::f32, 6, {2, 3}}}) == "ok");
  CHECK(code({{"s", dtype::f32, 6, {2, 4}}}) == "bad_shape");
  CHECK(code({{"s", dtype::f32, 6, {6, -1}}}) == "bad_shape");
  // The same texts as decode gives for the encoded message.
  const std::vector<product_spec> bad{{"a b", dtype::u8, 0}};
  message_writer w({}, bad);
  const buffer b = std::move(w).finish();
  CHECK(decode(b.span(), limits).error().text == check_specs(bad, limits)->text);
}

TEST_CASE("a gathered message leaves payloads where they lie and flattens to the encoded bytes") {
  const std::vector<product> in{product::make("a", std::vector<float>{1, 2, 3}),
                                product::make("empty", std::vector<double>{}),
                                product::make("b", std::vector<std::uint8_t>(1000, 7))};
  const product_views views(in);
  const message_info info{message_kind::request, 12, 3, status::ok, {4, 5, 6}};
  const buffer encoded = encode(info, views);
  const outgoing_message g = gather(info, views);
  // Nothing copied: each payload is the caller's memory, and the storage is the head only.
  REQUIRE(g.payloads.size() == 3);
  CHECK(g.payloads[0].second.data() == in[0].bytes.data());
  CHECK(g.payloads[2].second.data() == in[2].bytes.data());
  CHECK(g.payloads[1].second.empty());
  CHECK_FALSE(g.contiguous());
  CHECK(g.head.data() == g.storage.data());
  CHECK(g.storage.size() == g.head.size());
  CHECK(g.head.size() % wire_alignment == 0);
  CHECK(g.total_size == encoded.size());
  CHECK(g.part_count() == 2);
  buffer flat(static_cast<std::size_t>(g.total_size));
  g.flatten(flat.span());
  CHECK(std::memcmp(flat.data(), encoded.data(), encoded.size()) == 0);
  CHECK_THROWS_AS(g.flatten(buffer(10).span()), std::length_error);
  // The head's header, with parts set as a sender in parts does, still decodes after flattening.
  write_parts(flat.span(), g.part_count());
  const auto head = peek_head(flat.span());
  REQUIRE(head);
  CHECK(head->parts == 2);
  CHECK(head->total_size == encoded.size());
  CHECK(decode(flat.span()).ok());
}

TEST_CASE("a writer with a payload placed over other memory writes there, and only finishes gathered") {
  const std::vector<product_spec> specs{{"x", dtype::f64, 4}, {"y", dtype::i32, 2}};
  std::vector<double> elsewhere(4, 0.0);
  message_writer w({message_kind::reply, 1, 0, status::ok}, specs, {},
                   {reinterpret_cast<std::byte*>(elsewhere.data()), nullptr});
  CHECK(w.gathered());
  auto x = w.payload_as<double>(0);
  CHECK(static_cast<void*>(x.data()) == static_cast<void*>(elsewhere.data()));
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = double(i) + 0.5;
  auto y = w.payload_as<std::int32_t>(1);
  y[0] = -1;
  y[1] = 2;
  CHECK(elsewhere[3] == 3.5);
  message_writer plain({message_kind::reply, 1, 0, status::ok}, specs);
  CHECK_FALSE(plain.gathered());
  std::memcpy(plain.payload(0).data(), elsewhere.data(), 32);
  std::memcpy(plain.payload(1).data(), y.data(), 8);
  const buffer expected = std::move(plain).finish();
  const outgoing_message g = std::move(w).finish_outgoing();
  CHECK(g.storage.size() == g.total_size);  // "y" is not placed: the whole layout is stored
  CHECK_FALSE(g.contiguous());              // but "x" lies elsewhere
  buffer flat(static_cast<std::size_t>(g.total_size));
  g.flatten(flat.span());
  CHECK(std::memcmp(flat.data(), expected.data(), expected.size()) == 0);
  message_writer again({message_kind::reply, 1, 0, status::ok}, specs, {},
                       {reinterpret_cast<std::byte*>(elsewhere.data()), nullptr});
  CHECK_THROWS_AS(std::move(again).finish(), std::logic_error);
  // Nothing placed: the one outgoing type, contiguous, its head the whole message.
  message_writer whole({message_kind::reply, 1, 0, status::ok}, specs);
  const auto expected_size = message_writer::size_for(specs);
  const outgoing_message c = std::move(whole).finish_outgoing();
  CHECK(c.contiguous());
  CHECK(c.head.size() == expected_size);
  CHECK(c.total_size == expected_size);
  CHECK(c.part_count() == 0);
  // Bytes held elsewhere, contiguous.
  const auto held = std::make_shared<buffer>(expected.size());
  std::memcpy(held->data(), expected.data(), expected.size());
  const auto e = outgoing_message::whole(held->span(), held);
  CHECK(e.contiguous());
  CHECK(e.head.data() == held->data());
  CHECK(e.total_size == expected.size());
  buffer copy(expected.size());
  e.flatten(copy.span());
  CHECK(std::memcmp(copy.data(), expected.data(), expected.size()) == 0);
}
