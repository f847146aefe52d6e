#pragma once
// A blocking queue for worker threads that is fair across owners (a receiver's peers): each
// owner has its own FIFO, and pop() serves the owners with work in round robin, one item each
// turn. The owner just served (even if its queue emptied and refilled since) goes to the back
// of the turns only at the next pop(), after owners that arrived meanwhile: with one consumer,
// an owner's single item waits for the item being worked on and for one item of each other
// owner with work, never for a burst. pop() returns nullopt once the queue is closed and drained.

#include <algorithm>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <map>
#include <mutex>
#include <optional>

namespace offload::detail {

template <class T> class fair_queue {
 public:
  void push(int owner, T item) {
    {
      std::lock_guard lock(m_mutex);
      auto& q = m_queues[owner];
      // (An owner with items is in m_turns or in m_served, not both.)
      if (q.empty() && std::find(m_served.begin(), m_served.end(), owner) == m_served.end()) m_turns.push_back(owner);
      q.push_back(std::move(item));
      ++m_size;
    }
    m_cv.notify_one();
  }

  /// The first item of the owner whose turn it is; that owner goes to the back of the turns.
  std::optional<T> pop() {
    std::unique_lock lock(m_mutex);
    m_cv.wait(lock, [&] { return m_closed || m_size > 0; });
    if (m_size == 0) return std::nullopt;
    for (int o : m_served)
      if (m_queues.count(o) != 0) m_turns.push_back(o);
    m_served.clear();
    const int owner = m_turns.front();
    m_turns.pop_front();
    auto it = m_queues.find(owner);
    T item = std::move(it->second.front());
    it->second.pop_front();
    --m_size;
    if (it->second.empty()) m_queues.erase(it);
    m_served.push_back(owner);
    return item;
  }

  /// Calls keep(item) on every queued item (which may change it) and removes those for which
  /// it returns false, keeping the order of the rest.
  template <class Keep> void filter(Keep&& keep) {
    std::lock_guard lock(m_mutex);
    for (auto it = m_queues.begin(); it != m_queues.end();) {
      auto& q = it->second;
      for (auto item = q.begin(); item != q.end();) {
        if (keep(*item)) {
          ++item;
        } else {
          item = q.erase(item);
          --m_size;
        }
      }
      if (q.empty()) {
        std::erase(m_turns, it->first);
        std::erase(m_served, it->first);
        it = m_queues.erase(it);
      } else {
        ++it;
      }
    }
  }

  /// Items queued, all owners together.
  std::size_t size() const {
    std::lock_guard lock(m_mutex);
    return m_size;
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
  mutable std::mutex m_mutex;
  std::condition_variable m_cv;
  std::map<int, std::deque<T>> m_queues;  // owners with queued items only
  std::deque<int> m_turns;                // owners with items, in the order they are served
  std::deque<int> m_served;               // the owner served by the last pop() (with items or not)
  std::size_t m_size = 0;
  bool m_closed = false;
};

}  // namespace offload::detail
