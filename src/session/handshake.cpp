#include "handshake.hpp"

#include <algorithm>
#include <array>
#include <cstring>
#include <map>
#include <vector>

namespace offload::detail {

namespace {

constexpr std::size_t max_host_length = 255;
constexpr std::size_t max_signature_length = 64 * 1024;
constexpr std::size_t terms_count = 5;  // max message bytes, max products, max name length, credits, idle timeout ms

const std::byte* bytes_of(std::string_view t) {
  return reinterpret_cast<const std::byte*>(t.data());
}

bool printable(std::string_view t) {
  for (unsigned char c : t)
    if (c < 0x21 || c > 0x7e) return false;
  return true;
}

/// Every line of a signature is a printable, non-empty kernel name.
std::string signature_problem(std::string_view sig) {
  if (sig.size() > max_signature_length)
    return "kernel list of " + std::to_string(sig.size()) + " bytes exceeds " + std::to_string(max_signature_length);
  if (!sig.empty() && sig.back() != '\n') return "kernel list does not end with a newline";
  std::size_t start = 0;
  for (std::size_t i = 0; i < sig.size(); ++i) {
    if (sig[i] != '\n') continue;
    const auto name = sig.substr(start, i - start);
    if (name.empty()) return "kernel list has an empty line";
    if (!printable(name)) return "kernel list has a name outside printable ASCII";
    start = i + 1;
  }
  return {};
}

std::string terms_problem(const session_terms& t) {
  if (t.limits.max_message_bytes < wire_header_size + wire_entry_size)
    return "terms: maximum message size " + std::to_string(t.limits.max_message_bytes) + " is below " +
           std::to_string(wire_header_size + wire_entry_size) + " bytes";
  if (t.limits.max_products == 0) return "terms: maximum products per message is 0";
  if (t.limits.max_name_length == 0 || t.limits.max_name_length > 0xffff)
    return "terms: maximum name length " + std::to_string(t.limits.max_name_length) + " is outside 1..65535";
  if (t.credits == 0) return "terms: credits are 0";
  return {};
}

}  // namespace

buffer encode_hello(message_kind kind, status s, std::string_view signature, std::string_view host,
                    const session_terms* terms) {
  std::vector<product_view> items{{"kernels", dtype::u8, signature.size(), bytes_of(signature)}};
  if (!host.empty()) items.push_back({"host", dtype::u8, host.size(), bytes_of(host)});
  std::array<std::int64_t, terms_count> t{};
  if (terms != nullptr) {
    t = {static_cast<std::int64_t>(terms->limits.max_message_bytes), terms->limits.max_products,
         terms->limits.max_name_length, terms->credits, static_cast<std::int64_t>(terms->idle_timeout_ms)};
    items.push_back({"terms", dtype::i64, t.size(), reinterpret_cast<const std::byte*>(t.data())});
  }
  return encode({kind, 0, 0, s}, product_views(std::move(items)));
}

buffer make_hello(std::string_view signature, std::uint64_t now_ns) {
  auto hello = encode_hello(message_kind::hello, status::ok, signature);
  write_times(hello.span(), {now_ns, 0, 0});
  return hello;
}

buffer make_hello_ack(const message& hello, bool match, std::string_view signature, std::string_view host,
                      const session_terms& terms, std::uint64_t now_ns) {
  auto ack =
      encode_hello(message_kind::hello_ack, match ? status::ok : status::kernel_set_mismatch, signature, host, &terms);
  write_times(ack.span(), {hello.header().times[0], now_ns, 0});
  return ack;
}

buffer make_keepalive() {
  return encode({message_kind::keepalive, 0, 0, status::ok}, product_views{});
}
buffer make_goodbye() {
  return encode_hello(message_kind::goodbye, status::ok, {});
}
buffer make_goodbye_ack() {
  return encode_hello(message_kind::goodbye_ack, status::ok, {});
}

std::chrono::milliseconds keepalive_interval(const session_terms& terms) {
  return std::chrono::milliseconds(terms.idle_timeout_ms / 4);
}

std::int64_t clock_offset(const message& hello_ack, std::uint64_t received_ns, bool same_host) {
  if (same_host) return 0;
  const auto& t = hello_ack.header().times;
  return std::int64_t(t[1]) - std::int64_t((t[0] + received_ns) / 2);
}

wire_limits narrowed(wire_limits ours, const wire_limits& theirs) {
  ours.max_message_bytes = std::min(ours.max_message_bytes, theirs.max_message_bytes);
  ours.max_products = std::min(ours.max_products, theirs.max_products);
  ours.max_name_length = std::min(ours.max_name_length, theirs.max_name_length);
  return ours;
}

std::string text_product(const message& m, std::string_view name) {
  const auto* p = m.products().find(name);
  if (p == nullptr || p->type != dtype::u8) return {};
  return std::string(reinterpret_cast<const char*>(p->data), static_cast<std::size_t>(p->count));
}

hello_info parse_hello(const message& m) {
  hello_info out;
  const auto kind = m.header().kind;
  const bool is_ack = kind == message_kind::hello_ack;
  if (kind != message_kind::hello && !is_ack && kind != message_kind::goodbye && kind != message_kind::goodbye_ack) {
    out.error = "a '" + std::string(to_string(kind)) + "' message is not part of the handshake";
    return out;
  }
  const product_view* terms = nullptr;
  bool has_kernels = false;
  for (const auto& p : m.products()) {
    if (p.type != (p.name == "terms" ? dtype::i64 : dtype::u8)) {
      out.error = "product '" + std::string(p.name) + "' has dtype " + std::string(dtype_name(p.type));
      return out;
    }
    if (p.name == "kernels") {
      has_kernels = true;
    } else if (p.name == "host" && (kind == message_kind::hello || is_ack)) {
      if (p.count > max_host_length) {
        out.error = "host name of " + std::to_string(p.count) + " bytes exceeds " + std::to_string(max_host_length);
        return out;
      }
    } else if (p.name == "terms" && is_ack) {
      terms = &p;
    } else {
      out.error =
          "a '" + std::string(to_string(kind)) + "' message does not carry a product '" + std::string(p.name) + "'";
      return out;
    }
  }
  if (!has_kernels) {
    out.error = "product 'kernels' is missing";
    return out;
  }
  out.signature = text_product(m, "kernels");
  out.host = text_product(m, "host");
  if (auto problem = signature_problem(out.signature); !problem.empty()) {
    out.error = problem;
    return out;
  }
  if (!printable(out.host)) {
    out.error = "host name has a character outside printable ASCII";
    return out;
  }
  if (!is_ack) return out;
  if (terms == nullptr || terms->count != terms_count) {
    out.error = terms == nullptr
                    ? "hello_ack lacks the receiver's terms"
                    : "terms have " + std::to_string(terms->count) + " values, expected " + std::to_string(terms_count);
    return out;
  }
  std::array<std::int64_t, terms_count> t{};
  std::memcpy(t.data(), terms->data, sizeof t);
  for (std::size_t i = 0; i < terms_count; ++i)
    if (t[i] < 0 || (i >= 1 && i <= 3 && t[i] > 0xffffffff)) {
      out.error = "terms: value " + std::to_string(i) + " is " + std::to_string(t[i]) + ", outside its range";
      return out;
    }
  session_terms s;
  s.limits = {static_cast<std::uint64_t>(t[0]), static_cast<std::uint32_t>(t[1]), static_cast<std::uint32_t>(t[2])};
  s.credits = static_cast<std::uint32_t>(t[3]);
  s.idle_timeout_ms = static_cast<std::uint64_t>(t[4]);
  if (auto problem = terms_problem(s); !problem.empty()) {
    out.error = problem;
    return out;
  }
  out.terms = s;
  return out;
}

namespace {
/// name -> version of each "name@version" line ("" for a line without a version).
std::map<std::string, std::string, std::less<>> kernel_versions(std::string_view signature) {
  std::map<std::string, std::string, std::less<>> out;
  std::size_t start = 0;
  for (std::size_t i = 0; i < signature.size(); ++i) {
    if (signature[i] != '\n') continue;
    const auto line = signature.substr(start, i - start);
    const auto at = line.find('@');
    out.emplace(std::string(line.substr(0, at)), at == line.npos ? std::string() : std::string(line.substr(at + 1)));
    start = i + 1;
  }
  return out;
}

std::string version_text(const std::string& v) {
  return v.empty() ? std::string("no version") : "version " + v;
}
}  // namespace

namespace {
/// The lines of a kernel list, in order.
std::vector<std::string_view> lines_of(std::string_view list) {
  std::vector<std::string_view> out;
  std::size_t start = 0;
  for (std::size_t i = 0; i < list.size(); ++i) {
    if (list[i] != '\n') continue;
    out.push_back(list.substr(start, i - start));
    start = i + 1;
  }
  return out;
}
}  // namespace

std::vector<std::int32_t> kernel_map(std::string_view wanted, std::string_view offered) {
  const auto theirs = lines_of(offered);
  std::map<std::string_view, std::int32_t> index;
  for (std::size_t i = 0; i < theirs.size(); ++i) index.emplace(theirs[i], static_cast<std::int32_t>(i));
  std::vector<std::int32_t> out;
  for (const auto line : lines_of(wanted)) {
    const auto it = index.find(line);
    out.push_back(it == index.end() ? -1 : it->second);
  }
  return out;
}

std::string kernels_not_offered(std::string_view wanted, std::string_view offered, std::string_view here,
                                std::string_view there) {
  const auto mine = kernel_versions(wanted);
  const auto other = kernel_versions(offered);
  std::string out;
  for (const auto& [name, version] : mine) {
    const auto it = other.find(name);
    if (it != other.end() && it->second == version) continue;
    (out += out.empty() ? "" : "; ") += "kernel '" + name + "': ";
    if (it == other.end())
      out += "only on " + std::string(here);
    else
      out += version_text(version) + " on " + std::string(here) + ", " + version_text(it->second) + " on " +
             std::string(there);
  }
  return out;
}

}  // namespace offload::detail
