#pragma once
/// \file
/// Statistics as data: each statistics struct (transmitter_stats, receiver_stats) lists its
/// counters once, in `counters()`, and every printer (offload-run's JSON and CSV, the fault
/// summary, a service's totals) and every piece of arithmetic on them (differences, sums)
/// walks that list, so a new counter is one field and one line.

#include <cstdint>
#include <string>

namespace offload {

/// One counter of the statistics struct `Stats`.
template <class Stats> struct counter_field {
  const char* name;              ///< as in offload-run's JSON and CSV
  std::uint64_t Stats::*member;  ///< where it is
  bool fault = false;            ///< counts something that went wrong (summed in offload-run's "faults")
};

/// a - b, counter by counter (e.g. a run's share of a long-lived object's counters).
template <class Stats> Stats counters_minus(Stats a, const Stats& b) {
  for (const auto& c : Stats::counters()) a.*c.member -= b.*c.member;
  return a;
}

/// "name value, name value, ...": every counter, in order (for log lines and summaries).
template <class Stats> std::string counters_text(const Stats& s) {
  std::string out;
  for (const auto& c : Stats::counters())
    out.append(out.empty() ? "" : ", ").append(c.name).append(" ").append(std::to_string(s.*c.member));
  return out;
}

/// a + b, counter by counter.
template <class Stats> Stats counters_plus(Stats a, const Stats& b) {
  for (const auto& c : Stats::counters()) a.*c.member += b.*c.member;
  return a;
}

}  // namespace offload
