#include "grpc_security.hpp"

#include <offload/log.hpp>

#include <grpcpp/security/credentials.h>
#include <grpcpp/security/server_credentials.h>

#include <fstream>
#include <sstream>
#include <stdexcept>

namespace offload::detail {
namespace {

std::string read_pem(const std::string& path, const char* what) {
  std::ifstream f(path, std::ios::binary);
  std::ostringstream s;
  if (f) s << f.rdbuf();
  if (!f || s.str().find("-----BEGIN") == std::string::npos)
    throw std::invalid_argument(std::string(what) + " " + path + ": cannot be read as a PEM file");
  return s.str();
}

constexpr std::size_t logged_refusals = 5;

}  // namespace

std::shared_ptr<grpc::ServerCredentials> server_credentials(const std::string& address, const server_security& s) {
  if (s.tls_cert.empty() != s.tls_key.empty())
    throw std::invalid_argument("TLS needs both a certificate and its key (--tls-cert and --tls-key)");
  if (s.tls_cert.empty()) {
    if (!s.tls_client_ca.empty())
      throw std::invalid_argument("--tls-client-ca (mutual TLS) needs the server's own --tls-cert and --tls-key");
    if (!s.insecure && !loopback_address(address))
      throw std::invalid_argument("listening on " + address +
                                  " in plaintext would let anyone on the network read and send requests: give "
                                  "--tls-cert and --tls-key, listen on loopback, or accept it with --insecure");
    return grpc::InsecureServerCredentials();
  }
  grpc::SslServerCredentialsOptions options(s.tls_client_ca.empty()
                                                ? GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE
                                                : GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  if (!s.tls_client_ca.empty()) options.pem_root_certs = read_pem(s.tls_client_ca, "--tls-client-ca");
  options.pem_key_cert_pairs.push_back({read_pem(s.tls_key, "--tls-key"), read_pem(s.tls_cert, "--tls-cert")});
  return grpc::SslServerCredentials(options);
}

std::shared_ptr<grpc::ChannelCredentials> channel_credentials(const client_security& s) {
  if (s.tls_cert.empty() != s.tls_key.empty())
    throw std::invalid_argument("a client certificate needs its key (--tls-client-cert and --tls-client-key)");
  if (s.tls_ca.empty()) {
    if (!s.tls_cert.empty()) throw std::invalid_argument("a client certificate is for TLS: give --tls-ca too");
    return grpc::InsecureChannelCredentials();
  }
  grpc::SslCredentialsOptions options;
  options.pem_root_certs = read_pem(s.tls_ca, "--tls-ca");
  if (!s.tls_cert.empty()) {
    options.pem_private_key = read_pem(s.tls_key, "--tls-client-key");
    options.pem_cert_chain = read_pem(s.tls_cert, "--tls-client-cert");
  }
  return grpc::SslCredentials(options);
}

void add_token(grpc::ClientContext& context, const client_security& s) {
  if (!s.token.empty()) context.AddMetadata("authorization", "Bearer " + s.token);
}

token_gate::token_gate(std::shared_ptr<client_tokens> tokens, std::string service)
    : m_tokens(std::move(tokens)), m_service(std::move(service)) {}

std::optional<client_identity> token_gate::check(const std::multimap<grpc::string_ref, grpc::string_ref>& metadata,
                                                 const std::string& peer, grpc::Status& refusal) {
  if (!m_tokens) return client_identity{};
  std::string why;
  auto it = metadata.find("authorization");
  if (it == metadata.end()) {
    why = "no token (send the metadata 'authorization: Bearer TOKEN')";
  } else {
    const std::string_view value(it->second.data(), it->second.size());
    constexpr std::string_view bearer = "Bearer ";
    if (value.substr(0, bearer.size()) != bearer) {
      why = "the authorization metadata is not 'Bearer TOKEN'";
    } else if (auto who = m_tokens->find(value.substr(bearer.size()))) {
      return who;
    } else {
      why = "the token is not one of this service's";
    }
  }
  const auto n = m_refused.fetch_add(1) + 1;
  refusal = grpc::Status(grpc::StatusCode::UNAUTHENTICATED, m_service + ": " + why);
  std::lock_guard lock(m_mutex);
  const auto now = std::chrono::steady_clock::now();
  if (n <= logged_refusals) {
    offload::logger()->warn("{}: refused a call from {}: {}{}", m_service, peer, why,
                            n == logged_refusals ? " (further refusals: a line every 10 s)" : "");
    m_next_line = now + std::chrono::seconds(10);
  } else if (++m_held, now >= m_next_line) {
    offload::logger()->warn("{}: refused {} more call(s) without a valid token (the last from {}: {}); {} in all",
                            m_service, m_held, peer, why, n);
    m_held = 0;
    m_next_line = now + std::chrono::seconds(10);
  }
  return std::nullopt;
}

}  // namespace offload::detail
