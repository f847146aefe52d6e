#pragma once
// A thread-safe pool of message buffers in power-of-two size classes, so that steady-state
// traffic allocates nothing.

#include <offload/buffer.hpp>

#include <array>
#include <bit>
#include <mutex>
#include <vector>

namespace offload::detail {

class buffer_pool {
 public:
  /// Keeps at most `per_class` free buffers of each size class.
  explicit buffer_pool(std::size_t per_class = 64) : m_per_class(per_class) {}

  /// A buffer of at least `size` bytes (its size() is `size`).
  buffer acquire(std::size_t size) {
    const auto c = size_class(size);
    buffer b;
    {
      std::lock_guard lock(m_mutex);
      if (!m_free[c].empty()) {
        b = std::move(m_free[c].back());
        m_free[c].pop_back();
      }
    }
    if (b.capacity() < class_bytes(c)) b.resize(class_bytes(c));
    b.resize(size);
    return b;
  }

  /// Returns a buffer for reuse (dropped when its class is full or it is not pool-sized).
  void release(buffer&& b) {
    if (b.capacity() == 0) return;
    const auto c = size_class(b.capacity());
    if (class_bytes(c) != b.capacity()) return;
    std::lock_guard lock(m_mutex);
    if (m_free[c].size() < m_per_class) m_free[c].push_back(std::move(b));
  }

 private:
  static constexpr std::size_t min_shift = 12;  // 4 KiB
  static constexpr std::size_t classes = 64 - min_shift;
  static std::size_t size_class(std::size_t size) {
    const std::size_t rounded = std::bit_ceil(std::max<std::size_t>(size, std::size_t{1} << min_shift));
    return static_cast<std::size_t>(std::countr_zero(rounded)) - min_shift;
  }
  static std::size_t class_bytes(std::size_t c) { return std::size_t{1} << (c + min_shift); }

  std::size_t m_per_class;
  std::mutex m_mutex;
  std::array<std::vector<buffer>, classes> m_free;
};

}  // namespace offload::detail
