#include "endpoint.hpp"

#include "src/wire/clock.hpp"

#include <limits>
#include <thread>

namespace offload::detail {

void endpoint::submit(outgoing o) {
  if (m_schedule.active()) {
    const auto now = static_cast<std::int64_t>(now_ns());
    const auto release = m_schedule.release(o.dest, o.message_size(), now);
    m_delayed[o.dest].push_back({release, std::move(o)});
    ++m_delayed_count;
    return;
  }
  post(std::move(o));
}

bool endpoint::post_due() {
  if (m_delayed_count == 0) return false;
  const auto now = static_cast<std::int64_t>(now_ns());
  bool any = false;
  for (auto& [dest, queue] : m_delayed) {
    while (!queue.empty() && queue.front().release_ns <= now) {
      post(std::move(queue.front().o));
      queue.pop_front();
      --m_delayed_count;
      any = true;
    }
  }
  return any;
}

std::chrono::steady_clock::time_point endpoint::next_release() const noexcept {
  std::int64_t next = std::numeric_limits<std::int64_t>::max();
  for (const auto& [dest, queue] : m_delayed)
    if (!queue.empty()) next = std::min(next, queue.front().release_ns);
  if (next == std::numeric_limits<std::int64_t>::max()) return std::chrono::steady_clock::time_point::max();
  return std::chrono::steady_clock::time_point(std::chrono::nanoseconds(next));
}

void endpoint::send(int dest, buffer bytes) {
  outgoing o{dest, bytes.data(), bytes.size(), {}, nullptr, {}, 0};
  o.bytes = std::move(bytes);  // (moving a buffer keeps its data where it is)
  submit(std::move(o));
}

void endpoint::send(int dest, std::span<const std::byte> bytes, std::shared_ptr<const void> keep_alive) {
  submit({dest, bytes.data(), bytes.size(), {}, std::move(keep_alive), {}, 0});
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
  submit(std::move(o));
}

bool endpoint::progress_sends() {
  const bool posted = post_due();
  return complete_sends() || posted;
}

std::size_t endpoint::abandon(int dest) {
  std::size_t n = 0;
  if (auto it = m_delayed.find(dest); it != m_delayed.end()) {
    n += it->second.size();
    m_delayed_count -= it->second.size();
    m_delayed.erase(it);
  }
  return n + abandon_posted(dest);
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
