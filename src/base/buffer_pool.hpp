#pragma once
// A thread-safe pool of message buffers in power-of-two size classes, so that steady-state
// traffic allocates (and page-faults) nothing. Buffers it hands out come back by themselves
// when they are destroyed; create pools with std::make_shared.

#include <offload/buffer.hpp>

#include <algorithm>
#include <array>
#include <bit>
#include <memory>
#include <mutex>
#include <vector>

namespace offload::detail {

class buffer_pool final : public buffer::home, public std::enable_shared_from_this<buffer_pool> {
 public:
  /// Keeps at most `per_class` free blocks of each size class.
  explicit buffer_pool(std::size_t per_class = 64) : m_per_class(per_class) {}
  buffer_pool(const buffer_pool&) = delete;
  buffer_pool& operator=(const buffer_pool&) = delete;
  ~buffer_pool() {
    for (auto& blocks : m_free)
      for (auto* b : blocks) buffer::deallocate(b);
  }

  /// A buffer of at least `size` bytes (its size() is `size`), back here when destroyed.
  buffer acquire(std::size_t size) {
    const auto c = size_class(size);
    std::byte* block = nullptr;
    {
      std::lock_guard lock(m_mutex);
      if (!m_free[c].empty()) {
        block = m_free[c].back();
        m_free[c].pop_back();
      }
    }
    if (block == nullptr) block = buffer::allocate(class_bytes(c));
    return buffer(block, size, class_bytes(c), shared_from_this());
  }

  void take_back(std::byte* block, std::size_t capacity) noexcept override {
    const auto c = size_class(capacity);
    {
      std::lock_guard lock(m_mutex);
      if (class_bytes(c) == capacity && m_free[c].size() < m_per_class) {
        m_free[c].push_back(block);
        return;
      }
    }
    buffer::deallocate(block);
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
  std::array<std::vector<std::byte*>, classes> m_free;
};

}  // namespace offload::detail
