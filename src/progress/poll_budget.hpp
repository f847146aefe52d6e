#pragma once
// The adaptive wait policy's rule: how long an idle progress thread polls before it sleeps,
// learned from its recent idle gaps. No clock here, so that the rule is tested on made-up gaps.
//
// An idle gap runs from the engine going idle (the first poll that found nothing after some
// work) to the next work: a message a client's poll found, or a wake or task from another
// thread. Polling pays only for the messages (a wake interrupts a sleep at once), but a gap
// that a wake ended says that no message came sooner, so it counts as a gap that long: this
// is how a transmitter learns that after a reply comes nothing but its own next request.
// Each gap is measured to the last poll that still found nothing, a lower bound on when the
// work came, so a thread that slept through gaps which have since become short learns it.
//
// The rule (decide), on the last `gap_history::capacity` gaps:
//  - No gap seen yet, or a fixed policy (progress_options::adaptive false): poll as configured
//    (spin until `spin`, yield until `yield`).
//  - Take g, the longest recent gap once the longest fifth is left out: of the last 16, the
//    13th shortest (three stray gaps, a thread descheduled for a tick say, change nothing; four
//    long ones, as a transmitter between its events leaves one in every three, do).
//  - g longer than 2 x `max_sleep`: sleep at once (1 µs doubling to max_sleep, as `block`).
//    Asleep, a message is seen at most max_sleep late; polling for it would cost the whole gap
//    in CPU, more than twice the latency it could save. This is the case of requests
//    milliseconds apart: a receiver between requests, a transmitter between its events.
//  - Otherwise poll until 2 g after going idle (at least `min_poll`): spin if that is within
//    `spin`, else yield between polls from the start, up to `yield`. Spinning longer holds the
//    core from the threads the engine just handed work to (a receiver's kernel thread, a
//    transmitter's worker): on a busy node that alone added tens of µs to a round trip
//    (results/wait-policy.md).
// The rate-dependent part is thus one comparison and one product; `spin`, `yield` and
// `max_sleep` keep their meaning as bounds.

#include <offload/progress.hpp>

#include <array>
#include <chrono>
#include <cstddef>
#include <span>

namespace offload::detail {

/// How long an idle progress thread polls, counted from its last work: it polls without pause
/// until `spin`, yields between polls until `yield` (if later than `spin`), then sleeps.
struct poll_budget {
  std::chrono::microseconds spin{0};
  std::chrono::microseconds yield{0};
  bool operator==(const poll_budget&) const = default;
};

/// The last `capacity` idle gaps, oldest overwritten first.
class gap_history {
 public:
  static constexpr std::size_t capacity = 16;
  void add(std::chrono::microseconds gap) noexcept { m_gaps[m_next++ % capacity] = gap; }
  /// The gaps held (at most `capacity`, in no particular order).
  std::span<const std::chrono::microseconds> recent() const noexcept {
    return {m_gaps.data(), m_next < capacity ? m_next : capacity};
  }

 private:
  std::array<std::chrono::microseconds, capacity> m_gaps{};
  std::size_t m_next = 0;
};

/// The shortest poll when recent gaps are short: about one sleep and wake's CPU.
inline constexpr std::chrono::microseconds min_poll{5};

/// The rule above: the poll budget for the next idle period given the recent gaps (the last
/// `gap_history::capacity` of them count).
poll_budget decide(std::span<const std::chrono::microseconds> recent_gaps, const progress_options& o);

}  // namespace offload::detail
