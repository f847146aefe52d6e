#pragma once
// A blocking multi-producer, multi-consumer queue for worker threads: pop() waits for an item
// and returns nullopt once the queue is closed and drained.

#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>

namespace offload::detail {

template <class T> class work_queue {
 public:
  void push(T item) {
    {
      std::lock_guard lock(m_mutex);
      m_items.push_back(std::move(item));
    }
    m_cv.notify_one();
  }

  std::optional<T> pop() {
    std::unique_lock lock(m_mutex);
    m_cv.wait(lock, [&] { return m_closed || !m_items.empty(); });
    if (m_items.empty()) return std::nullopt;
    T item = std::move(m_items.front());
    m_items.pop_front();
    return item;
  }

  /// Wakes every consumer; items already queued are still handed out.
  void close() {
    {
      std::lock_guard lock(m_mutex);
      m_closed = true;
    }
    m_cv.notify_all();
  }

 private:
  std::mutex m_mutex;
  std::condition_variable m_cv;
  std::deque<T> m_items;
  bool m_closed = false;
};

}  // namespace offload::detail
