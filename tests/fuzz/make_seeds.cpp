// Writes the seed corpus of the fuzz harnesses: one valid message of every kind, and a few
// layouts (no products, many, every dtype, shaped products), each named for what it is.
//   make_seeds DIR   (writes DIR/decode/*.bin and DIR/handshake/*.bin)
#include "src/session/handshake.hpp"

#include <offload/wire.hpp>

#include <filesystem>
#include <fstream>
#include <vector>

using namespace offload;

namespace {

void write(const std::filesystem::path& dir, const std::string& name, const buffer& b) {
  std::filesystem::create_directories(dir);
  std::ofstream(dir / (name + ".bin"), std::ios::binary)
      .write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  const std::filesystem::path root = argv[1];
  const auto decode_dir = root / "decode", hello_dir = root / "handshake";
  const std::vector<product> mixed{
      product::make("f", std::vector<float>{1.5f, -2}), product::make("d", std::vector<double>{3.25}),
      product::make("i", std::vector<std::int32_t>{-7, 8, 9}), product::make("l", std::vector<std::int64_t>{1LL << 40}),
      product::make("bytes", std::vector<std::uint8_t>{1, 2, 3, 4, 5})};
  write(decode_dir, "request_mixed",
        encode({message_kind::request, 42, 1, status::ok, {1, 2, 3}}, product_views(mixed)));
  write(decode_dir, "reply_one",
        encode({message_kind::reply, 7, 2, status::ok, {4, 5, 6}},
               product_views(std::vector<product>{product::make("out", std::vector<float>(20, 0.5f))})));
  // A request with a timeout (50 ms) and a priority (2) in its header (protocol 5, section 2.4).
  write(decode_dir, "request_deadline",
        encode({message_kind::request, 44, 3, status::ok, {50'000'000, 2, 0}}, product_views(mixed)));
  // Shaped products of the dtypes version 7 added (protocol section 2.2).
  const std::vector<product> shaped{
      product::make("b", std::vector<std::uint8_t>{1, 0, 1, 1}, {2, 2}),
      product::make("i8", std::vector<std::int8_t>{-1, 2, -3, 4, -5, 6}, {1, 2, 3}),
      product::make("i16", std::vector<std::int16_t>{-300, 300}),
      product::make("u16", std::vector<std::uint16_t>{1, 2, 3, 4}, {4, 1}),
      product::make("u32", std::vector<std::uint32_t>{1u << 31}),
      product::make("u64", std::vector<std::uint64_t>{1, 2}, {2, 1}),
      product::make("h", std::vector<float16>{float16::from_float(0.5f), float16::from_float(-2)}, {1, 2}),
      product::make("bh", std::vector<bfloat16>{bfloat16::from_float(3), bfloat16::from_float(-1)}, {2, 1}),
      product::make("none", std::vector<float>{}, {0, 4})};
  std::vector<product> typed = shaped;
  typed[0].type = dtype::boolean;
  write(decode_dir, "request_shaped", encode({message_kind::request, 45, 1, status::ok}, product_views(typed)));
  write(decode_dir, "request_empty", encode({message_kind::request, 1, 0, status::ok}, product_views{}));
  write(decode_dir, "error", encode_error(9, status::bad_input, "kernel 'mlp': input 'features' has 15 columns"));
  write(decode_dir, "keepalive", encode({message_kind::keepalive, 0, 0, status::ok}, product_views{}));
  std::vector<product> many;
  for (int i = 0; i < 12; ++i)
    many.push_back(product::make("p" + std::to_string(i), std::vector<std::uint8_t>(std::size_t(i), 1)));
  write(decode_dir, "request_many", encode({message_kind::request, 3, 0, status::ok}, product_views(many)));
  // A message as a receiver assembles it from a head and its parts (protocol section 1).
  buffer parts = encode({message_kind::request, 43, 1, status::ok}, product_views(mixed));
  write_parts(parts.span(), 5);
  write(decode_dir, "request_parts", parts);

  const std::string kernels = "clustering@1\necho@1\nmlp@1\nsynthetic@1\n";
  const detail::session_terms terms{{1 << 20, 64, 32}, 8, 60000};
  write(hello_dir, "hello", detail::encode_hello(message_kind::hello, status::ok, kernels, "node01"));
  write(hello_dir, "hello_ack", detail::encode_hello(message_kind::hello_ack, status::ok, kernels, "gpu07", &terms));
  write(hello_dir, "hello_ack_mismatch",
        detail::encode_hello(message_kind::hello_ack, status::kernel_set_mismatch, "echo\n", "gpu07", &terms));
  write(hello_dir, "goodbye", detail::encode_hello(message_kind::goodbye, status::ok, {}));
  write(hello_dir, "goodbye_ack", detail::encode_hello(message_kind::goodbye_ack, status::ok, {}));
  return 0;
}
