#pragma once
// The start-up handshake: hello / hello_ack carry the protocol version (in the header, checked
// by decode), the sender's kernel names (product "kernels", u8, one name per line) and its
// host name (product "host", u8), and timestamps for the clock offset (header times).

#include <offload/wire.hpp>

#include <string>
#include <string_view>
#include <vector>

namespace offload::detail {

inline buffer encode_hello(message_kind kind, status s, std::string_view signature, std::string_view host = {}) {
  auto bytes = [](std::string_view t) { return reinterpret_cast<const std::byte*>(t.data()); };
  std::vector<product_view> items{{"kernels", dtype::u8, signature.size(), bytes(signature)}};
  if (!host.empty()) items.push_back({"host", dtype::u8, host.size(), bytes(host)});
  return encode({kind, 0, 0, s}, product_views(std::move(items)));
}

/// The u8 product `name` of a message as text ("" when it has none).
inline std::string text_product(const message& m, std::string_view name) {
  const auto* p = m.products().find(name);
  if (p == nullptr || p->type != dtype::u8) return {};
  return std::string(reinterpret_cast<const char*>(p->data), static_cast<std::size_t>(p->count));
}

/// The kernel names a hello or hello_ack carries ("" when it has none).
inline std::string hello_signature(const message& m) { return text_product(m, "kernels"); }

/// "a\nb\n" -> "a, b".
inline std::string signature_list(std::string_view signature) {
  std::string out;
  for (char c : signature) {
    if (c == '\n') {
      out += ", ";
    } else {
      out += c;
    }
  }
  if (out.size() >= 2) out.resize(out.size() - 2);
  return out;
}

}  // namespace offload::detail
