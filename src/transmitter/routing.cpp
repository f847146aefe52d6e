#include "routing.hpp"

namespace offload::detail {

int choose_receiver(std::span<const receiver_link> links, routing policy, std::size_t& next) noexcept {
  const std::size_t n = links.size();
  int best = -1;
  for (std::size_t k = 0; k < n; ++k) {
    const std::size_t i = (next + k) % n;
    const auto& l = links[i];
    if (!l.takes_requests() || l.outstanding >= l.credits) continue;
    if (policy == routing::round_robin) {
      best = static_cast<int>(i);
      break;
    }
    if (best < 0 || l.outstanding < links[static_cast<std::size_t>(best)].outstanding) best = static_cast<int>(i);
  }
  if (best >= 0) next = (static_cast<std::size_t>(best) + 1) % n;
  return best;
}

bool any_takes_requests(std::span<const receiver_link> links) noexcept {
  for (const auto& l : links)
    if (l.takes_requests()) return true;
  return false;
}

}  // namespace offload::detail
