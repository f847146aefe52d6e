#include "poll_budget.hpp"

#include <algorithm>

namespace offload::detail {

poll_budget decide(std::span<const std::chrono::microseconds> recent_gaps, const progress_options& o) {
  if (!o.adaptive || recent_gaps.empty()) return {o.spin, o.yield};
  if (recent_gaps.size() > gap_history::capacity) recent_gaps = recent_gaps.last(gap_history::capacity);
  std::array<std::chrono::microseconds, gap_history::capacity> copy{};  // no allocation on the progress thread
  const auto gaps = std::span(copy).first(recent_gaps.size());
  std::ranges::copy(recent_gaps, gaps.begin());
  // The longest gap once the longest fifth is left out, so that a few stray gaps change nothing.
  const auto q = gaps.begin() + std::ptrdiff_t(gaps.size() - 1 - gaps.size() / 5);
  std::nth_element(gaps.begin(), q, gaps.end());
  if (*q > 2 * o.max_sleep) return {};  // sleep at once
  const auto poll = std::max(2 * *q, min_poll);
  if (poll <= o.spin) return {poll, poll};
  return {std::chrono::microseconds(0), std::min(poll, o.yield)};  // longer: yield from the start
}

}  // namespace offload::detail
