#pragma once
/// \file
/// An owned, 64-byte-aligned byte buffer: the storage of every message.

#include <cstddef>
#include <memory>
#include <span>

namespace offload {

/// Move-only owner of a 64-byte-aligned block of bytes. `size()` is the part in use,
/// `capacity()` what was allocated; `resize` within the capacity never reallocates.
/// Contents are not initialised.
class buffer {
 public:
  static constexpr std::size_t alignment = 64;

  buffer() = default;
  explicit buffer(std::size_t size);

  std::byte* data() noexcept { return m_data.get(); }
  const std::byte* data() const noexcept { return m_data.get(); }
  std::size_t size() const noexcept { return m_size; }
  std::size_t capacity() const noexcept { return m_capacity; }
  bool empty() const noexcept { return m_size == 0; }
  std::span<std::byte> span() noexcept { return {data(), m_size}; }
  std::span<const std::byte> span() const noexcept { return {data(), m_size}; }

  /// Sets the size; reallocates (dropping the contents) only when `size > capacity()`.
  void resize(std::size_t size);

 private:
  struct deleter {
    void operator()(std::byte* p) const noexcept;
  };
  std::unique_ptr<std::byte[], deleter> m_data;
  std::size_t m_size = 0;
  std::size_t m_capacity = 0;
};

}  // namespace offload
