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
  }
  m_cv.notify_all();
  m_thread.join();
}

void progress_engine::post(std::function<void()> f) {
  {
    std::lock_guard lock(m_mutex);
    m_tasks.push_back(std::move(f));
    m_woken = true;
  }
  m_cv.notify_one();
}

void progress_engine::wake() noexcept {
  {
    std::lock_guard lock(m_mutex);
    m_woken = true;
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

void progress_engine::idle_wait(std::chrono::steady_clock::time_point last_busy, std::chrono::microseconds& sleep) {
  const auto idle_for = std::chrono::steady_clock::now() - last_busy;
  if (idle_for < m_options.spin) return;
  if (idle_for < m_options.yield) {
    std::this_thread::yield();
    return;
  }
  // Sleep no longer than until a client's next timed work (e.g. an emulated-link send).
  auto due = std::chrono::steady_clock::time_point::max();
  for (const auto* c : m_clients) due = std::min(due, c->wake_by());
  const auto now = std::chrono::steady_clock::now();
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
  auto last_busy = std::chrono::steady_clock::now();
  auto sleep = std::chrono::microseconds(1);
  for (;;) {
    bool busy = false;
    try {
      busy = run_tasks();
      for (std::size_t i = 0; i < m_clients.size(); ++i) busy = m_clients[i]->progress() || busy;
    } catch (const std::exception& e) {
      if (m_hooks.fatal) m_hooks.fatal(e);
      std::_Exit(3);
    }
    {
      std::lock_guard lock(m_mutex);
      if (m_stopping && m_tasks.empty() && m_clients.empty()) return;
    }
    if (busy) {
      last_busy = std::chrono::steady_clock::now();
      sleep = std::chrono::microseconds(1);
    } else {
      idle_wait(last_busy, sleep);
    }
  }
}

}  // namespace offload::detail
