#pragma once
/// \file
/// An owned, 64-byte-aligned byte buffer: the storage of every message.

#include <cstddef>
#include <memory>
#include <span>

namespace offload {

/// Move-only owner of a 64-byte-aligned block of bytes. `size()` is the part in use,
/// `capacity()` what was allocated; `resize` within the capacity never reallocates.
/// Contents are not initialised. A buffer handed out by a pool goes back to that pool when it
/// is destroyed, wherever that happens (a result a user drops, say): fresh memory costs a page
/// fault per page, which dominated large transfers (results/overhead.md).
class buffer {
 public:
  static constexpr std::size_t alignment = 64;

  /// Where a pooled buffer's block returns. Implemented by pools.
  class home {
   public:
    /// Takes back a block of `capacity` bytes obtained with `allocate`.
    virtual void take_back(std::byte* block, std::size_t capacity) noexcept = 0;

   protected:
    ~home() = default;
  };
  /// A block for a buffer: `capacity` bytes, 64-byte aligned (throws std::bad_alloc).
  static std::byte* allocate(std::size_t capacity);
  static void deallocate(std::byte* block) noexcept;

  buffer() = default;
  explicit buffer(std::size_t size);
  /// Adopts `block` (from `allocate`) of `capacity` bytes, `size` in use; when the buffer dies
  /// or reallocates, the block goes to `owner`.
  buffer(std::byte* block, std::size_t size, std::size_t capacity, std::shared_ptr<home> owner) noexcept;

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
  struct deleter {  // no default member initialisers: they would make it not default-constructible here
    std::shared_ptr<home> owner;
    std::size_t capacity;
    void operator()(std::byte* p) const noexcept;
  };
  std::unique_ptr<std::byte[], deleter> m_data;
  std::size_t m_size = 0;
  std::size_t m_capacity = 0;
};

}  // namespace offload
