#include "endpoint.hpp"

#include <thread>

namespace offload::detail {

void endpoint::send(int dest, buffer bytes) {
  outgoing o{dest, bytes.data(), bytes.size(), {}, nullptr, {}, 0};
  o.bytes = std::move(bytes);  // (moving a buffer keeps its data where it is)
  send(std::move(o));
}

void endpoint::send(int dest, std::span<const std::byte> bytes, std::shared_ptr<const void> keep_alive) {
  send({dest, bytes.data(), bytes.size(), {}, std::move(keep_alive), {}, 0});
}

void endpoint::send(int dest, gathered_message m) {
  bool whole = m.storage.size() == m.total_size;  // every payload written in storage, in place
  for (const auto& [offset, bytes] : m.payloads)
    whole = whole && (bytes.empty() || bytes.data() == m.storage.data() + offset);
  if (whole) {
    send(dest, std::move(m.storage));
    return;
  }
  outgoing o{dest, m.storage.data(), static_cast<std::size_t>(m.head_size), {}, std::move(m.keep_alive), {}, 0};
  o.bytes = std::move(m.storage);
  o.payloads = std::move(m.payloads);
  o.total = m.total_size;
  send(std::move(o));
}

bool endpoint::drain_sends(double seconds) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  while (pending_sends() > 0) {
    if (!progress_sends()) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
  }
  return true;
}

}  // namespace offload::detail
