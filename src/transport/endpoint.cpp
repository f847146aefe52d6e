#include "endpoint.hpp"

#include <thread>

namespace offload::detail {

bool endpoint::drain_sends(double seconds) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  while (pending_sends() > 0) {
    if (!progress_sends()) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
  }
  return true;
}

}  // namespace offload::detail
