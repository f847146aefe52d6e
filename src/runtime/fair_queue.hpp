#pragma once
// A blocking queue for worker threads that is fair across owners (a receiver's peers): each
// owner has its own FIFO, and pop() serves the owners with work in round robin, one item each
// turn. An owner just served goes to the back of the turns only at the next pop(), after
// owners that arrived meanwhile: with one consumer, an owner's single item waits for the item
// being worked on and for one item of each other owner with work, never for a burst. pop()
// returns nullopt once the queue is closed and drained.

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
      if (q.empty()) m_turns.push_back(owner);  // (an owner with items is in m_turns or m_served)
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
    m_turns.insert(m_turns.end(), m_served.begin(), m_served.end());
    m_served.clear();
    const int owner = m_turns.front();
    m_turns.pop_front();
    auto it = m_queues.find(owner);
    T item = std::move(it->second.front());
    it->second.pop_front();
    --m_size;
    if (it->second.empty())
      m_queues.erase(it);
    else
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
  std::deque<int> m_served;               // owners with items served since the last pop()
  std::size_t m_size = 0;
  bool m_closed = false;
};

}  // namespace offload::detail
