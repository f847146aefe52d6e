#pragma once
// TLS credentials and token checks shared by the gRPC servers and clients of the library (our
// session stream, src/transport; the KServe v2 front end and client, src/kserve).

#include <offload/grpc.hpp>

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

namespace offload::detail {

/// The server credentials of `s` for `address`: TLS (mutual with tls_client_ca) or plaintext.
/// Throws std::invalid_argument when a file cannot be read, a setting is missing its pair, or
/// plaintext is asked for on an address that is not loopback without `insecure`.
std::shared_ptr<grpc::ServerCredentials> server_credentials(const std::string& address, const server_security& s);

/// The channel credentials of `s` (TLS when tls_ca is set). Throws std::invalid_argument when a
/// file cannot be read or a certificate lacks its key.
std::shared_ptr<grpc::ChannelCredentials> channel_credentials(const client_security& s);

/// Puts `s.token` on a call as `authorization: Bearer TOKEN`.
void add_token(grpc::ClientContext& context, const client_security& s);

/// Checks each call's token against a tokens file; refusals are counted and logged (the first
/// few, then a line every 10 s with how many more).
class token_gate {
 public:
  token_gate(std::shared_ptr<client_tokens> tokens, std::string service);
  bool required() const noexcept { return m_tokens != nullptr; }
  /// The client the call's `authorization` names; without tokens an anonymous client (name ""). A
  /// refused call gets nullopt and `refusal` set to UNAUTHENTICATED with the reason.
  std::optional<client_identity> check(const std::multimap<grpc::string_ref, grpc::string_ref>& metadata,
                                       const std::string& peer, grpc::Status& refusal);
  /// Calls refused so far.
  std::uint64_t refused() const noexcept { return m_refused.load(); }

 private:
  std::shared_ptr<client_tokens> m_tokens;
  std::string m_service;
  std::atomic<std::uint64_t> m_refused{0};
  std::mutex m_mutex;
  std::uint64_t m_held = 0;  // refusals not logged since the last line
  std::chrono::steady_clock::time_point m_next_line;
};

}  // namespace offload::detail
