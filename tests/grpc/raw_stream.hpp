#pragma once
// One gRPC client stream to a receiver, driven one operation at a time and written from
// docs/protocol.md only (no transmitter): what the rogue and service tests use to act as an
// outside client would.
#include "tests/mpi/check.hpp"

#include <offload/wire.hpp>

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace offload_test {

/// 100 bytes that are not a message (the magic is wrong): answered `malformed`.
inline offload::buffer garbage() {
  offload::buffer b(100);
  for (std::size_t i = 0; i < b.size(); ++i) b.data()[i] = std::byte(i * 37 + 11);
  return b;
}

class raw_stream {
 public:
  /// A stream on its own connection.
  raw_stream(const std::string& address, const std::string& method)
      : raw_stream(grpc::CreateChannel(address, grpc::InsecureChannelCredentials()), method) {}
  /// A stream on `channel` (streams of one channel share its connection).
  raw_stream(std::shared_ptr<grpc::Channel> channel, const std::string& method)
      : m_channel(std::move(channel)), m_stub(m_channel) {
    m_call = m_stub.PrepareCall(&m_context, method, &m_cq);
    m_call->StartCall(tag(1));
    m_started = wait(1);
  }
  ~raw_stream() {
    m_context.TryCancel();
    m_cq.Shutdown();
    void* t = nullptr;
    bool ok = false;
    while (m_cq.Next(&t, &ok)) {
    }
  }
  raw_stream(const raw_stream&) = delete;
  raw_stream& operator=(const raw_stream&) = delete;

  bool started() const noexcept { return m_started; }
  bool send(std::span<const std::byte> bytes) {
    grpc::Slice s(bytes.data(), bytes.size());
    grpc::ByteBuffer bb(&s, 1);
    m_call->Write(bb, tag(2));
    return wait(2);
  }
  bool send(const offload::buffer& b) { return send(b.span()); }
  std::optional<offload::message> receive() {
    grpc::ByteBuffer bb;
    m_call->Read(&bb, tag(3));
    if (!wait(3)) return std::nullopt;
    std::vector<grpc::Slice> slices;
    (void)bb.Dump(&slices);
    offload::buffer out(bb.Length());
    std::size_t at = 0;
    for (const auto& s : slices) {
      std::memcpy(out.data() + at, s.begin(), s.size());
      at += s.size();
    }
    auto m = offload::message::from(std::move(out));
    if (!m) return std::nullopt;
    return std::move(m.value());
  }
  grpc::Status finish() {
    grpc::Status st;
    if (m_started) {
      m_call->WritesDone(tag(4));
      wait(4);
    }
    m_call->Finish(&st, tag(5));
    wait(5);
    return st;
  }
  /// Cancels the stream (as a client that dies or gives up).
  void cut() { m_context.TryCancel(); }

 private:
  static void* tag(std::intptr_t n) { return reinterpret_cast<void*>(n); }
  bool wait(std::intptr_t expected) {
    void* t = nullptr;
    bool ok = false;
    if (!m_cq.Next(&t, &ok)) return false;
    EXPECT(t == tag(expected), "completion of operation %ld, expected %ld", long(reinterpret_cast<std::intptr_t>(t)),
           long(expected));
    return ok;
  }
  std::shared_ptr<grpc::Channel> m_channel;
  grpc::GenericStub m_stub;
  grpc::CompletionQueue m_cq;
  grpc::ClientContext m_context;
  std::unique_ptr<grpc::GenericClientAsyncReaderWriter> m_call;
  bool m_started = false;
};

}  // namespace offload_test
