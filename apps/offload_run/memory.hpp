#pragma once
// Resident memory of this process over a run: a thread reads /proc/self/status every
// `period` so a report can show whether memory grows after warm-up (the soak test reads it).

#include <nlohmann/json.hpp>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

namespace offload::app {

/// VmRSS and VmHWM (peak) of this process in KiB; 0 when /proc cannot tell.
struct rss_kib {
  std::uint64_t current = 0, peak = 0;
};
rss_kib read_rss();

class memory_sampler {
 public:
  explicit memory_sampler(std::chrono::milliseconds period = std::chrono::milliseconds(100));
  ~memory_sampler();
  memory_sampler(const memory_sampler&) = delete;
  memory_sampler& operator=(const memory_sampler&) = delete;

  /// Marks "now" as the end of warm-up (or the start of serving): later samples are the run's.
  void mark();
  /// Stops sampling; {"rss_start_kib" (at mark), "rss_q1/q2/q3_kib" (the run's samples at a
  /// quarter, half, three quarters of the samples), "rss_end_kib", "rss_max_kib" (after the
  /// mark), "vm_hwm_kib" (peak of the whole process), "samples"}.
  nlohmann::ordered_json stop();

 private:
  void run();
  std::chrono::milliseconds m_period;
  std::mutex m_mutex;
  std::condition_variable m_cv;
  bool m_stop = false;
  std::size_t m_mark = 0;
  std::vector<std::uint64_t> m_samples;
  std::thread m_thread;
};

}  // namespace offload::app
