#include <offload/buffer.hpp>

#include <new>

namespace offload {

std::byte* buffer::allocate(std::size_t capacity) {
  return static_cast<std::byte*>(::operator new[](capacity, std::align_val_t{alignment}));
}

void buffer::deallocate(std::byte* block) noexcept {
  ::operator delete[](block, std::align_val_t{alignment});
}

void buffer::deleter::operator()(std::byte* p) const noexcept {
  if (owner)
    owner->take_back(p, capacity);
  else
    deallocate(p);
}

buffer::buffer(std::size_t size) {
  resize(size);
}

buffer::buffer(std::byte* block, std::size_t size, std::size_t capacity, std::shared_ptr<home> owner) noexcept
    : m_data(block, deleter{std::move(owner), capacity}), m_size(size), m_capacity(capacity) {}

void buffer::resize(std::size_t size) {
  if (size > m_capacity) {
    // Round up so that a later, slightly larger size fits too. The old block goes back where
    // it came from (its deleter); the new one is plain memory.
    const std::size_t cap = (size + alignment - 1) / alignment * alignment;
    m_data = std::unique_ptr<std::byte[], deleter>(allocate(cap), deleter{});
    m_capacity = cap;
  }
  m_size = size;
}

}  // namespace offload
