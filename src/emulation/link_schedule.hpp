#pragma once
// When each message of an emulated link may leave (see offload/emulation.hpp). Pure
// bookkeeping on nanosecond times: no MPI, no clock, so it can be tested exactly.

#include <offload/emulation.hpp>

#include <cstdint>
#include <map>

namespace offload::detail {

class link_schedule {
 public:
  explicit link_schedule(const link_emulation& e, std::uint64_t seed = 1);
  bool active() const noexcept { return m_e.active(); }
  /// The time a message of `bytes` handed over at `now_ns` for `dest` leaves.
  std::int64_t release(int dest, std::uint64_t bytes, std::int64_t now_ns);

 private:
  struct link {
    std::int64_t wire_free = 0;     // when the emulated wire is free for the next message
    std::int64_t last_release = 0;  // FIFO: no message leaves before the previous one
  };
  link_emulation m_e;
  std::uint64_t m_rng;
  std::map<int, link> m_links;
};

}  // namespace offload::detail
