#include "memory.hpp"

#include <algorithm>
#include <fstream>
#include <string>

namespace offload::app {

rss_kib read_rss() {
  rss_kib r;
  std::ifstream in("/proc/self/status");
  std::string key;
  std::uint64_t value = 0;
  while (in >> key) {
    if (key == "VmRSS:" && in >> value)
      r.current = value;
    else if (key == "VmHWM:" && in >> value)
      r.peak = value;
    in.ignore(1 << 12, '\n');
  }
  return r;
}

memory_sampler::memory_sampler(std::chrono::milliseconds period) : m_period(period) {
  m_samples.push_back(read_rss().current);
  m_thread = std::thread([this] { run(); });
}

memory_sampler::~memory_sampler() {
  stop();
}

void memory_sampler::run() {
  std::unique_lock lock(m_mutex);
  while (!m_cv.wait_for(lock, m_period, [this] { return m_stop; })) {
    lock.unlock();
    const auto v = read_rss().current;
    lock.lock();
    m_samples.push_back(v);
  }
}

void memory_sampler::mark() {
  const auto v = read_rss().current;
  std::lock_guard lock(m_mutex);
  m_samples.push_back(v);
  m_mark = m_samples.size() - 1;
}

nlohmann::ordered_json memory_sampler::stop() {
  {
    std::lock_guard lock(m_mutex);
    m_stop = true;
  }
  m_cv.notify_all();
  if (m_thread.joinable()) {
    m_thread.join();
    m_samples.push_back(read_rss().current);
  }
  const std::vector<std::uint64_t> run(m_samples.begin() + static_cast<std::ptrdiff_t>(m_mark), m_samples.end());
  auto at = [&](double q) { return run[static_cast<std::size_t>(q * double(run.size() - 1))]; };
  return {{"rss_start_kib", run.front()},  {"rss_q1_kib", at(0.25)},
          {"rss_q2_kib", at(0.5)},         {"rss_q3_kib", at(0.75)},
          {"rss_end_kib", run.back()},     {"rss_max_kib", *std::max_element(run.begin(), run.end())},
          {"vm_hwm_kib", read_rss().peak}, {"samples", run.size()}};
}

}  // namespace offload::app
