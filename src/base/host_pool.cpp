#include <offload/host_pool.hpp>

#include <sys/mman.h>

#include <bit>
#include <cstdlib>
#include <new>

namespace offload {

namespace {
constexpr std::size_t page = 4096;
constexpr std::size_t huge_page = std::size_t{2} << 20;
constexpr std::size_t largest = std::size_t{1} << 62;

/// The class of `size` before page rounding: 0 for up to 4 KiB, then four per power of two.
std::size_t raw_class(std::size_t size) noexcept {
  if (size <= page) return 0;
  const std::size_t p = std::size_t(std::bit_width(size - 1)) - 1;  // 2^p < size <= 2^(p+1)
  const std::size_t step = std::size_t{1} << (p - 2);
  const std::size_t k = (size - (std::size_t{1} << p) + step - 1) / step;  // 1..4
  return 1 + (p - 12) * 4 + (k - 1);
}
std::size_t raw_bytes(std::size_t c) noexcept {
  if (c == 0) return page;
  const std::size_t p = (c - 1) / 4 + 12, k = (c - 1) % 4 + 1;
  return (std::size_t{1} << p) + k * (std::size_t{1} << (p - 2));
}
}  // namespace

std::size_t host_pool::class_bytes(std::size_t c) noexcept {
  return (raw_bytes(c) + page - 1) / page * page;
}

// Below 16 KiB a quarter step is under a page: those classes round to the same block size,
// and the class of that block size is the one that holds them.
std::size_t host_pool::class_of(std::size_t size) noexcept {
  return raw_class(class_bytes(raw_class(size)));
}

std::size_t host_pool::block_bytes(std::size_t size) noexcept {
  return class_bytes(class_of(size));
}

std::shared_ptr<host_pool> host_pool::make(host_pool_config config) {
  return std::shared_ptr<host_pool>(new host_pool(config));
}

host_pool::host_pool(host_pool_config config) : m_config(config) {}

host_pool::~host_pool() {
  trim();
}

std::byte* host_pool::make_block(std::size_t bytes) {
  void* p = nullptr;
  if (posix_memalign(&p, page, bytes) != 0) throw std::bad_alloc();
  auto* block = static_cast<std::byte*>(p);
  if (m_config.huge_pages && bytes >= huge_page) {
    // The whole huge pages inside the block (madvise wants a page-aligned start).
    const auto start = (reinterpret_cast<std::uintptr_t>(block) + huge_page - 1) / huge_page * huge_page;
    const auto end = (reinterpret_cast<std::uintptr_t>(block) + bytes) / huge_page * huge_page;
    if (end > start) madvise(reinterpret_cast<void*>(start), end - start, MADV_HUGEPAGE);  // advice only
  }
  if (m_config.prefault)
    for (std::size_t i = 0; i < bytes; i += page) static_cast<volatile std::byte*>(block)[i] = std::byte{0};
  std::lock_guard lock(m_pin_mutex);
  if (m_pinner && m_pinner->pin(block, bytes)) {
    m_pinned.insert(block);
    m_pinned_bytes += bytes;
  }
  return block;
}

void host_pool::release(std::byte* block, std::size_t bytes) noexcept {
  {
    std::lock_guard lock(m_pin_mutex);
    if (m_pinned.erase(block) > 0) {
      if (m_pinner) m_pinner->unpin(block);
      m_pinned_bytes -= bytes;
    }
  }
  std::free(block);
  ++m_releases;
}

buffer host_pool::acquire(std::size_t size) {
  if (size > largest) throw std::bad_alloc();
  const std::size_t c = class_of(size), bytes = class_bytes(c);
  std::byte* block = nullptr;
  {
    auto& cls = m_classes[c];
    std::lock_guard lock(cls.mutex);
    if (!cls.free.empty()) {
      block = cls.free.back();  // the most recently used: likely still in cache
      cls.free.pop_back();
    }
  }
  if (block != nullptr) {
    ++m_hits;
    m_cached -= bytes;
  } else {
    block = make_block(bytes);
    ++m_misses;
  }
  m_in_use += bytes;
  return buffer(block, size, bytes, shared_from_this());
}

void host_pool::take_back(std::byte* block, std::size_t capacity) noexcept {
  m_in_use -= capacity;
  const std::size_t c = raw_class(capacity);
  if (capacity <= largest && class_bytes(c) == capacity) {
    // Cached only while the cache stays within its bound: reserve the bytes, then keep.
    if (m_cached.fetch_add(capacity) + capacity <= m_config.max_cached_bytes) {
      auto& cls = m_classes[c];
      try {
        std::lock_guard lock(cls.mutex);
        cls.free.push_back(block);
        return;
      } catch (...) {  // no memory to grow the free list: release the block instead
      }
    }
    m_cached -= capacity;
  }
  release(block, capacity);
}

void host_pool::set_pinner(std::shared_ptr<pinner> p) {
  std::lock_guard pin_lock(m_pin_mutex);
  m_pinner = std::move(p);
  if (!m_pinner) return;
  for (std::size_t c = 0; c < classes; ++c) {
    std::lock_guard lock(m_classes[c].mutex);
    for (auto* block : m_classes[c].free)
      if (!m_pinned.contains(block) && m_pinner->pin(block, class_bytes(c))) {
        m_pinned.insert(block);
        m_pinned_bytes += class_bytes(c);
      }
  }
}

void host_pool::trim() noexcept {
  for (std::size_t c = 0; c < classes; ++c) {
    std::vector<std::byte*> blocks;
    {
      std::lock_guard lock(m_classes[c].mutex);
      blocks.swap(m_classes[c].free);
    }
    for (auto* block : blocks) {
      m_cached -= class_bytes(c);
      release(block, class_bytes(c));
    }
  }
}

host_pool_stats host_pool::stats() const noexcept {
  return {m_hits.load(), m_misses.load(), m_releases.load(), m_cached.load(), m_in_use.load(), m_pinned_bytes.load()};
}

}  // namespace offload
