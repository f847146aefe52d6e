#include "engine.hpp"

#include <algorithm>
#include <cstdlib>
#include <future>

namespace offload::detail {

void progress_engine::start(hooks h) {
  m_hooks = std::move(h);
  std::promise<void> ready;
  auto started = ready.get_future();
  m_thread = std::thread([this, &ready] {
    m_thread_id = std::this_thread::get_id();
    try {
      if (m_hooks.setup) m_hooks.setup();
    } catch (...) {
      ready.set_exception(std::current_exception());
      return;
    }
    ready.set_value();
    loop();
    if (m_hooks.teardown) m_hooks.teardown();
  });
  try {
    started.get();
  } catch (...) {
    m_thread.join();
    throw;
  }
}

progress_engine::~progress_engine() {
  if (!m_thread.joinable()) return;
  {
    std::lock_guard lock(m_mutex);
    m_stopping = true;
    m_signalled.store(true, std::memory_order_release);
  }
  m_cv.notify_all();
  m_thread.join();
}

void progress_engine::post(std::function<void()> f) {
  {
    std::lock_guard lock(m_mutex);
    m_tasks.push_back(std::move(f));
    m_woken = true;
    m_signalled.store(true, std::memory_order_release);
  }
  m_cv.notify_one();
}

void progress_engine::wake() noexcept {
  {
    std::lock_guard lock(m_mutex);
    m_woken = true;
    m_signalled.store(true, std::memory_order_release);
  }
  m_cv.notify_one();
}

bool progress_engine::run_tasks() {
  std::vector<std::function<void()>> batch;
  {
    std::lock_guard lock(m_mutex);
    batch.swap(m_tasks);
    m_woken = false;
  }
  for (auto& t : batch) t();
  return !batch.empty();
}

void progress_engine::idle_wait(std::chrono::steady_clock::time_point now,
                                std::chrono::steady_clock::time_point last_busy, std::chrono::microseconds& sleep) {
  const auto idle_for = now - last_busy;
  if (idle_for < m_budget.spin) return;
  if (idle_for < m_budget.yield) {
    std::this_thread::yield();
    return;
  }
  // Sleep no longer than until a client's next timed work (e.g. an emulated-link send).
  auto due = std::chrono::steady_clock::time_point::max();
  for (const auto* c : m_clients) due = std::min(due, c->wake_by());
  if (due <= now) return;
  const auto nap =
      due == std::chrono::steady_clock::time_point::max()
          ? sleep
          : std::min<std::chrono::microseconds>(sleep, std::chrono::ceil<std::chrono::microseconds>(due - now));
  std::unique_lock lock(m_mutex);
  m_cv.wait_for(lock, nap, [&] { return m_woken || m_stopping || !m_tasks.empty(); });
  sleep = std::min(sleep * 2, m_options.max_sleep);
}

void progress_engine::loop() {
  using clock = std::chrono::steady_clock;
  auto last_busy = clock::now();
  auto last_empty = last_busy;  // the last poll that found nothing since last_busy, when went_idle
  bool went_idle = false;
  auto sleep = std::chrono::microseconds(1);
  bool stopping = false;
  for (;;) {
    bool busy = false;
    const bool signalled = m_signalled.exchange(false, std::memory_order_acquire);
    try {
      if (signalled) busy = run_tasks();
      for (std::size_t i = 0; i < m_clients.size(); ++i) busy = m_clients[i]->progress() || busy;
    } catch (const std::exception& e) {
      if (m_hooks.fatal) m_hooks.fatal(e);
      std::_Exit(3);
    }
    if (signalled || stopping) {
      std::lock_guard lock(m_mutex);
      stopping = m_stopping;
      if (m_stopping && m_tasks.empty() && m_clients.empty()) return;
    }
    const auto now = clock::now();
    if (busy) {
      if (went_idle) {  // an idle gap ended: learn from it (poll_budget.hpp)
        m_gaps.add(std::chrono::ceil<std::chrono::microseconds>(last_empty - last_busy));
        m_budget = decide(m_gaps.recent(), m_options);
      }
      last_busy = now;
      went_idle = false;
      sleep = std::chrono::microseconds(1);
    } else {
      last_empty = now;
      went_idle = true;
      idle_wait(now, last_busy, sleep);
    }
  }
}

}  // namespace offload::detail
