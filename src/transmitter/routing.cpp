#include "routing.hpp"

namespace offload::detail {

std::string_view to_string(link_state s) noexcept {
  switch (s) {
    case link_state::connecting: return "connecting";
    case link_state::open: return "open";
    case link_state::down: return "down";
    case link_state::refused: return "refused";
    case link_state::closing: return "closing";
    case link_state::closed: return "closed";
  }
  return "unknown";
}

int choose_receiver(std::span<const receiver_link> links, std::uint32_t kernel, routing policy, std::size_t& next,
                    const eligible_fn& eligible) noexcept {
  const std::size_t n = links.size();
  int best = -1;
  for (std::size_t k = 0; k < n; ++k) {
    const std::size_t i = (next + k) % n;
    const auto& l = links[i];
    if (!l.takes(kernel) || l.outstanding >= l.credits || !eligible(i)) continue;
    if (policy == routing::round_robin) {
      best = static_cast<int>(i);
      break;
    }
    if (best < 0 || l.outstanding < links[static_cast<std::size_t>(best)].outstanding) best = static_cast<int>(i);
  }
  if (best >= 0) next = (static_cast<std::size_t>(best) + 1) % n;
  return best;
}

bool any_takes(std::span<const receiver_link> links, std::uint32_t kernel, const eligible_fn& eligible) noexcept {
  for (std::size_t i = 0; i < links.size(); ++i)
    if (links[i].takes(kernel) && eligible(i)) return true;
  return false;
}

}  // namespace offload::detail
