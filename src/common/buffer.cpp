#include <offload/buffer.hpp>

#include <new>

namespace offload {

void buffer::deleter::operator()(std::byte* p) const noexcept {
  ::operator delete[](p, std::align_val_t{alignment});
}

buffer::buffer(std::size_t size) { resize(size); }

void buffer::resize(std::size_t size) {
  if (size > m_capacity) {
    // Round up so that a pooled buffer fits a range of later sizes.
    std::size_t cap = (size + alignment - 1) / alignment * alignment;
    m_data.reset(static_cast<std::byte*>(::operator new[](cap, std::align_val_t{alignment})));
    m_capacity = cap;
  }
  m_size = size;
}

}  // namespace offload
