#include "routing.hpp"

namespace offload::detail {

namespace {
bool skipped(const std::vector<bool>& skip, std::size_t i) noexcept {
  return i < skip.size() && skip[i];
}
}  // namespace

int choose_receiver(std::span<const receiver_link> links, routing policy, std::size_t& next,
                    const std::vector<bool>& skip) noexcept {
  const std::size_t n = links.size();
  int best = -1;
  for (std::size_t k = 0; k < n; ++k) {
    const std::size_t i = (next + k) % n;
    const auto& l = links[i];
    if (!l.takes_requests() || l.outstanding >= l.credits || skipped(skip, i)) continue;
    if (policy == routing::round_robin) {
      best = static_cast<int>(i);
      break;
    }
    if (best < 0 || l.outstanding < links[static_cast<std::size_t>(best)].outstanding) best = static_cast<int>(i);
  }
  if (best >= 0) next = (static_cast<std::size_t>(best) + 1) % n;
  return best;
}

bool any_takes_requests(std::span<const receiver_link> links, const std::vector<bool>& skip) noexcept {
  for (std::size_t i = 0; i < links.size(); ++i)
    if (links[i].takes_requests() && !skipped(skip, i)) return true;
  return false;
}

}  // namespace offload::detail
