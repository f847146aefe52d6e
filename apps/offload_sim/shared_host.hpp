#pragma once
// A host whose cores the simulation's CPU work shares, as a processor-sharing server: with n
// pieces of work running and c cores free of fixed load, each progresses at min(1, c / n)
// seconds of CPU per second (the kernel's scheduler, time-sliced finely). For a model of one
// machine running client jobs and a CPU receiver together, as the measured runs on a small
// machine do.

#include "des.hpp"

#include <cstdint>
#include <functional>
#include <vector>

namespace offload::sim {

class shared_host {
 public:
  /// `cores` for the work, less `fixed_load` cores kept busy by threads not modelled one by
  /// one (progress threads); at least a tenth of a core is left.
  shared_host(simulation& s, double cores, double fixed_load);
  /// Runs `cpu_seconds` of work, sharing the cores; `done` when it is finished.
  void start(double cpu_seconds, std::function<void()> done);
  double cores() const noexcept { return m_cores; }

 private:
  struct work {
    double remaining;
    std::function<void()> done;
  };
  double rate() const;
  void advance();     // brings every running piece's remaining work to now
  void reschedule();  // one timer, at the earliest finish
  void finish(std::uint64_t gen);
  simulation& m_sim;
  double m_cores;
  std::vector<work> m_running;
  double m_last = 0;
  std::uint64_t m_gen = 0;
};

}  // namespace offload::sim
