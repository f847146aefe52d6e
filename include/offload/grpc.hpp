#pragma once
/// \file
/// The gRPC transport's settings (convert them to an offload::transport). No gRPC header is
/// needed to use them; a build without gRPC refuses them with std::runtime_error when a
/// transmitter or receiver is constructed.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace offload {

/// What one client of a service may do (0: no limit of its own). Past max_inflight a request is
/// answered `busy`; past max_work (declared flops of one request) `too_large`; a priority above
/// max_priority (numerically below it: 1 is the highest) is lowered to it.
struct client_limits {
  std::uint32_t max_inflight = 0;
  double max_work = 0;
  std::uint32_t max_priority = 0;
};

/// A client a token names.
struct client_identity {
  std::string name;
  client_limits limits;
};

/// A service's tokens file: one client per line, `NAME TOKEN [max_inflight=N] [max_work=FLOPS]
/// [max_priority=P]`, `#` starts a comment (docs/reliability.md, "Running a service"). Clients
/// send `authorization: Bearer TOKEN`. Shared by every front end given it; reload() re-reads
/// the file (offload-serve does at SIGHUP) without touching sessions already open.
class client_tokens {
 public:
  /// Reads `path`; throws std::invalid_argument naming the file, line and what is wrong.
  static std::shared_ptr<client_tokens> load(const std::string& path);
  /// Reads the file again; on an error the table in use stays as it was, and the error is thrown.
  void reload();
  /// The client whose token is `token` (compared in constant time per entry), if any.
  std::optional<client_identity> find(std::string_view token) const;
  std::size_t size() const;
  const std::string& path() const noexcept { return m_path; }

 private:
  struct entry {
    std::string token;
    client_identity who;
  };
  static std::vector<entry> parse(const std::string& path);
  std::string m_path;
  mutable std::mutex m_mutex;
  std::vector<entry> m_entries;
};

/// TLS and tokens of a gRPC server (grpc_listen, kserve_listen). Files are PEM.
struct server_security {
  std::string tls_cert;                   ///< the server's certificate (chain); with tls_key: TLS; empty: plaintext
  std::string tls_key;                    ///< its private key
  std::string tls_client_ca;              ///< set: mutual TLS, a client must present a certificate this CA signed
  std::shared_ptr<client_tokens> tokens;  ///< set: every call must carry one of its tokens
  /// Plaintext is allowed on loopback only (127.0.0.0/8, ::1, localhost, unix:) unless this is set.
  bool insecure = false;
  /// "TLS", "mutual TLS" or "plaintext", with ", tokens (N clients)" when tokens are required.
  std::string describe() const;
};

/// TLS and a token of a gRPC client (grpc_link, kserve_link). Files are PEM.
struct client_security {
  std::string tls_ca;    ///< the CA that signed the servers' certificates; set: TLS
  std::string tls_cert;  ///< this client's certificate, for mutual TLS (with tls_key)
  std::string tls_key;
  std::string token;  ///< sent as `authorization: Bearer TOKEN` when not empty
};

/// Whether `address` ("host:port", "unix:...") is on loopback only.
bool loopback_address(const std::string& address);

/// A transmitter's receivers, reached over gRPC: "host:port" each (offload-serve, or a
/// receiver constructed with grpc_listen). Receiver i of the results is addresses[i].
struct grpc_link {
  std::vector<std::string> addresses;
  client_security security{};
};

/// A receiver serving over gRPC: it listens on `address` ("host:port"; port 0 picks a free
/// one, see receiver::port()) with `threads` completion-queue threads. Each transmitter's
/// stream is one peer.
struct grpc_listen {
  std::string address;
  std::size_t threads = 2;
  /// Most memory gRPC may hold for this server (its resource quota: messages being received,
  /// connection buffers); a stream that would take more is reset (RST_STREAM). It bounds what
  /// clients sending at once, or sending oversized messages, can make the server hold
  /// (docs/design.md, "What a service can cost"). Zero: no bound.
  std::size_t memory_bytes = 0;
  server_security security{};
  /// A stream that sends no message within this long of opening is cut off (CANCELLED): a
  /// connection that never says hello holds memory (about 16 KiB) and a stream slot.
  std::chrono::milliseconds hello_timeout{10000};
  /// A stream whose reply has waited this long for its client to read it is cut off: a client
  /// that stops reading holds at most this long what was queued for it.
  std::chrono::milliseconds write_timeout{30000};
  /// Streams open at once from one client address (the IP, whatever the port); a new one past
  /// it is refused (RESOURCE_EXHAUSTED). 0: no bound.
  std::size_t max_streams_per_address = 256;
};

}  // namespace offload
