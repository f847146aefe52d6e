#pragma once
// The start-up handshake: hello / hello_ack carry the protocol version (in the header, checked
// by decode) and the sender's kernel names (product "kernels", u8, one name per line).

#include <offload/wire.hpp>

#include <string>
#include <string_view>

namespace offload::detail {

inline buffer encode_hello(message_kind kind, status s, std::string_view signature) {
  product_view kernels{"kernels", dtype::u8, signature.size(), reinterpret_cast<const std::byte*>(signature.data())};
  return encode({kind, 0, 0, s}, product_views({kernels}));
}

/// The kernel names a hello or hello_ack carries ("" when it has none).
inline std::string hello_signature(const message& m) {
  const auto* p = m.products().find("kernels");
  if (p == nullptr || p->type != dtype::u8) return {};
  return std::string(reinterpret_cast<const char*>(p->data), static_cast<std::size_t>(p->count));
}

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
