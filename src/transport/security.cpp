// A service's tokens file and the plaintext rule (offload/grpc.hpp). No gRPC here: a build
// without it still reads and checks the file.

#include <offload/grpc.hpp>

#include <charconv>
#include <fstream>
#include <limits>
#include <set>
#include <sstream>
#include <stdexcept>

namespace offload {
namespace {

/// Parses N of "KEY=N" as a number of type T within [low, high]; throws with the place.
template <class T>
T limit_value(const std::string& where, const std::string& key, const std::string& text, T low, T high) {
  T v{};
  const auto* end = text.data() + text.size();
  const auto [p, ec] = std::from_chars(text.data(), end, v);
  if (ec != std::errc() || p != end || v < low || v > high)
    throw std::invalid_argument(where + ": " + key + "=" + text + " is not a number in " + std::to_string(low) + ".." +
                                std::to_string(high));
  return v;
}

/// Compares without an early exit, so that the time taken does not say how much matched.
bool same_secret(std::string_view a, std::string_view b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  const std::size_t n = std::max(a.size(), b.size());
  for (std::size_t i = 0; i < n; ++i) {
    const auto x = i < a.size() ? static_cast<unsigned char>(a[i]) : 0;
    const auto y = i < b.size() ? static_cast<unsigned char>(b[i]) : 0;
    diff = static_cast<unsigned char>(diff | (x ^ y));
  }
  return diff == 0;
}

}  // namespace

std::vector<client_tokens::entry> client_tokens::parse(const std::string& path) {
  std::ifstream f(path);
  if (!f) throw std::invalid_argument("tokens file " + path + ": cannot be read");
  std::vector<entry> out;
  std::set<std::string> names;
  std::string line;
  for (int number = 1; std::getline(f, line); ++number) {
    if (const auto hash = line.find('#'); hash != std::string::npos) line.erase(hash);
    std::istringstream words(line);
    std::string name, token, word;
    if (!(words >> name)) continue;  // blank or comment
    const std::string where = path + ":" + std::to_string(number);
    if (!(words >> token)) throw std::invalid_argument(where + ": client '" + name + "' has no token (NAME TOKEN ...)");
    if (token.size() < 16)
      throw std::invalid_argument(where + ": client '" + name + "': a token of " + std::to_string(token.size()) +
                                  " characters is too short to be a secret (at least 16)");
    if (!names.insert(name).second) throw std::invalid_argument(where + ": client '" + name + "' is named twice");
    for (const auto& e : out)
      if (e.token == token)
        throw std::invalid_argument(where + ": client '" + name + "' has the token of client '" + e.who.name + "'");
    entry e{token, {name, {}}};
    while (words >> word) {
      const auto eq = word.find('=');
      const std::string key = word.substr(0, eq), value = eq == std::string::npos ? "" : word.substr(eq + 1);
      if (key == "max_inflight")
        e.who.limits.max_inflight = limit_value<std::uint32_t>(where, key, value, 1, 1u << 30);
      else if (key == "max_work")
        e.who.limits.max_work = limit_value<double>(where, key, value, 1, std::numeric_limits<double>::max());
      else if (key == "max_priority")
        e.who.limits.max_priority = limit_value<std::uint32_t>(where, key, value, 1, 1u << 30);
      else
        throw std::invalid_argument(where + ": client '" + name + "': '" + word +
                                    "' is not one of max_inflight=N, max_work=FLOPS, max_priority=P");
    }
    out.push_back(std::move(e));
  }
  if (out.empty()) throw std::invalid_argument("tokens file " + path + ": no client in it (NAME TOKEN per line)");
  return out;
}

std::shared_ptr<client_tokens> client_tokens::load(const std::string& path) {
  auto t = std::make_shared<client_tokens>();
  t->m_path = path;
  t->m_entries = parse(path);
  return t;
}

void client_tokens::reload() {
  auto fresh = parse(m_path);  // (throws before anything changes)
  std::lock_guard lock(m_mutex);
  m_entries = std::move(fresh);
}

std::optional<client_identity> client_tokens::find(std::string_view token) const {
  std::lock_guard lock(m_mutex);
  std::optional<client_identity> found;
  for (const auto& e : m_entries)  // (every entry compared: the time does not say which matched)
    if (same_secret(e.token, token) && !found) found = e.who;
  return found;
}

std::size_t client_tokens::size() const {
  std::lock_guard lock(m_mutex);
  return m_entries.size();
}

std::string server_security::describe() const {
  std::string s = tls_cert.empty() ? "plaintext" : tls_client_ca.empty() ? "TLS" : "mutual TLS";
  if (tokens) s += ", tokens (" + std::to_string(tokens->size()) + " clients)";
  return s;
}

bool loopback_address(const std::string& address) {
  if (address.rfind("unix:", 0) == 0 || address.rfind("unix-abstract:", 0) == 0) return true;
  const auto colon = address.rfind(':');
  std::string host = colon == std::string::npos ? address : address.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  return host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0;
}

}  // namespace offload
