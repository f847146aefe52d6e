#pragma once
// The clock of per-request timestamps: steady_clock (CLOCK_MONOTONIC, shared by all processes
// of a node) in nanoseconds. Between nodes the handshake measures the offset.
#include <chrono>
#include <cstdint>

namespace offload::detail {

inline std::uint64_t now_ns() noexcept {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
          .count());
}

}  // namespace offload::detail
