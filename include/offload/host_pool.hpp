#pragma once
/// \file
/// The caching host allocator: every message, product and reply buffer of the library comes
/// from one, so that steady-state traffic allocates, page-faults and pins nothing.
///
/// Blocks come in size classes, four per power of two from 4 KiB (a block is at most 25% larger
/// than asked for). A block is made once, touched page by page when made (pre-faulted; blocks of
/// 2 MiB or more advised to use transparent huge pages), and pinned when a pinner is set (the
/// CUDA backend sets one: host<->device copies then need no staging copy). A buffer handed out
/// goes back to its pool when destroyed, wherever that happens; the pool keeps at most
/// `max_cached_bytes` of free blocks and releases (unpins, frees) any block beyond that. Blocks
/// in use are the callers' (bounded by credits and message limits, docs/reliability.md).
/// Thread-safe; a hit takes one lock of its size class.

#include <offload/buffer.hpp>

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_set>
#include <vector>

namespace offload {

struct host_pool_config {
  /// Free blocks kept for reuse, in bytes, all classes together.
  std::size_t max_cached_bytes = std::size_t{256} << 20;
  /// Touch every page of a block when it is made, so that no request pays its page faults.
  bool prefault = true;
  /// madvise(MADV_HUGEPAGE) on blocks of 2 MiB or more (where the kernel allows it).
  bool huge_pages = true;
};

/// What a pool did and holds. Counters only grow; bytes_* are current values.
struct host_pool_stats {
  std::uint64_t hits = 0;          ///< acquisitions served from a cached block
  std::uint64_t misses = 0;        ///< blocks made (allocated, pre-faulted, pinned)
  std::uint64_t releases = 0;      ///< blocks freed because the cache was full (or trimmed)
  std::uint64_t bytes_cached = 0;  ///< free blocks held for reuse
  std::uint64_t bytes_in_use = 0;  ///< blocks handed out and not yet back
  std::uint64_t bytes_pinned = 0;  ///< of both, the bytes registered with the pinner
};

class host_pool final : public buffer::home, public std::enable_shared_from_this<host_pool> {
 public:
  /// Registers host memory with a device runtime (page-locks it). The CUDA backend's pinner
  /// calls cudaHostRegister and cudaHostUnregister.
  class pinner {
   public:
    virtual ~pinner() = default;
    /// Page-locks [block, block + bytes) (page-aligned); false when it could not (the block is
    /// then used pageable).
    virtual bool pin(std::byte* block, std::size_t bytes) noexcept = 0;
    virtual void unpin(std::byte* block) noexcept = 0;
  };

  static std::shared_ptr<host_pool> make(host_pool_config config = {});
  host_pool(const host_pool&) = delete;
  host_pool& operator=(const host_pool&) = delete;
  ~host_pool();

  /// A buffer of `size` bytes (capacity: its class's block size), 4096-byte aligned, back
  /// here when destroyed. Throws std::bad_alloc.
  buffer acquire(std::size_t size);
  /// Pins the cached blocks now and every block made from now on (blocks in use at this moment
  /// stay pageable for their life). One pinner per pool; nullptr unpins nothing and stops
  /// pinning new blocks.
  void set_pinner(std::shared_ptr<pinner> p);
  /// Releases every cached block.
  void trim() noexcept;
  host_pool_stats stats() const noexcept;
  const host_pool_config& config() const noexcept { return m_config; }

  /// The block size that `acquire(size)` hands out.
  static std::size_t block_bytes(std::size_t size) noexcept;

  void take_back(std::byte* block, std::size_t capacity) noexcept override;

 private:
  explicit host_pool(host_pool_config config);
  static constexpr std::size_t min_shift = 12;  // 4 KiB
  static constexpr std::size_t steps = 4;       // classes per power of two
  static constexpr std::size_t classes = (64 - min_shift) * steps;
  static std::size_t class_of(std::size_t size) noexcept;
  static std::size_t class_bytes(std::size_t c) noexcept;

  std::byte* make_block(std::size_t bytes);
  void release(std::byte* block, std::size_t bytes) noexcept;

  struct size_class {
    std::mutex mutex;
    std::vector<std::byte*> free;
  };
  host_pool_config m_config;
  std::array<size_class, classes> m_classes;
  std::atomic<std::uint64_t> m_hits{0}, m_misses{0}, m_releases{0};
  std::atomic<std::uint64_t> m_cached{0}, m_in_use{0}, m_pinned_bytes{0};
  std::mutex m_pin_mutex;  // the pinner and the set of pinned blocks (not on the hot path)
  std::shared_ptr<pinner> m_pinner;
  std::unordered_set<std::byte*> m_pinned;
};

}  // namespace offload
