#include "scheduler.hpp"

#include <algorithm>
#include <stdexcept>
#include <string>
#include <utility>

namespace offload::detail {

std::string batching_rules::problem() const {
  for (auto p : preferred)
    if (p == 0 || (max_batch > 0 && p > max_batch))
      return "preferred batch size " + std::to_string(p) + " is outside 1..max_batch (" +
             (max_batch > 0 ? std::to_string(max_batch) : std::string("no limit")) + ")";
  if (max_wait.count() < 0) return "max_wait is negative";
  return {};
}

std::size_t scheduler::add_queue(queue_rules rules) {
  if (auto p = rules.batching.problem(); !p.empty()) throw std::invalid_argument(p);
  if (rules.default_priority == 0) throw std::invalid_argument("default priority must be at least 1 (the highest)");
  std::sort(rules.batching.preferred.begin(), rules.batching.preferred.end());
  m_queues.push_back(kernel_queue{std::move(rules), {}, 0, 0, 0, {}, 0, 0});
  return m_queues.size() - 1;
}

scheduler::admission scheduler::push(std::size_t queue_index, const sched_request& r, sched_time now) {
  auto& q = m_queues.at(queue_index);
  if (q.rules.max_queue > 0 && q.waiting >= q.rules.max_queue) return admission::busy;
  // (The arrival order is the clock's: a caller whose clock went back is taken as now.)
  if (!q.arrivals.empty()) now = std::max(now, q.arrivals.back().first);
  entry e{r, now, q.next_seq++};
  q.arrivals.emplace_back(now, false);
  if (e.r.priority == 0) e.r.priority = q.rules.default_priority;
  auto& l = q.levels[e.r.priority];
  auto& mine = l.by_peer[r.peer];
  if (mine.empty()) l.turns.push_back(r.peer);  // a peer with nothing waiting joins the end of the turns
  mine.items.push_back(std::move(e));
  ++q.waiting;
  ++m_waiting;
  q.items += r.items;
  m_next_deadline = std::min(m_next_deadline, r.deadline);
  return admission::queued;
}

std::map<std::uint32_t, scheduler::level>::iterator scheduler::first_level(kernel_queue& q) {
  auto it = q.levels.begin();
  while (it->second.turns.empty()) ++it;  // (called only while something waits)
  return it;
}

std::map<std::uint32_t, scheduler::level>::const_iterator scheduler::first_level(const kernel_queue& q) {
  auto it = q.levels.begin();
  while (it->second.turns.empty()) ++it;
  return it;
}

sched_time scheduler::oldest(const kernel_queue& q) {
  return q.arrivals.empty() ? sched_time::max() : q.arrivals.front().first;
}

void scheduler::taken(kernel_queue& q, const entry& e) {
  q.arrivals[static_cast<std::size_t>(e.seq - q.first_seq)].second = true;
  while (!q.arrivals.empty() && q.arrivals.front().second) {
    q.arrivals.pop_front();
    ++q.first_seq;
  }
}

bool scheduler::executor_free(const kernel_queue& q) const {
  return q.rules.instances == 0 || q.running < q.rules.instances;
}

std::size_t scheduler::batch_size(const kernel_queue& q, sched_time now) const {
  if (q.waiting == 0) return 0;
  const auto& b = q.rules.batching;
  const std::size_t cap = b.max_batch > 0 ? std::min<std::size_t>(q.waiting, b.max_batch) : q.waiting;
  const bool full =
      (b.max_batch > 0 && q.waiting >= b.max_batch) || (b.max_batch_items > 0 && q.items >= b.max_batch_items);
  if (full) return cap;
  std::size_t preferred = 0;  // the largest preferred size the waiting requests can form
  for (auto p : b.preferred)
    if (p <= cap) preferred = p;
  if (preferred > 0) return preferred;
  if (b.max_wait.count() > 0 && now - oldest(q) < b.max_wait) return 0;  // still filling
  return cap;
}

std::optional<sched_batch> scheduler::next(sched_time now) {
  expire(now);
  if (m_waiting == 0 || (m_budget > 0 && m_running >= m_budget)) return std::nullopt;
  std::size_t best = m_queues.size(), n = 0;
  std::uint32_t best_priority = 0;
  sched_time best_age{};
  bool best_age_known = false;  // (the oldest request costs a walk over the peers: only on a tie)
  for (std::size_t i = 0; i < m_queues.size(); ++i) {
    const auto& q = m_queues[i];
    if (q.waiting == 0 || !executor_free(q)) continue;
    const std::size_t size = batch_size(q, now);
    if (size == 0) continue;
    const std::uint32_t priority = first_level(q)->first;
    if (best == m_queues.size() || priority < best_priority) {
      best = i;
      n = size;
      best_priority = priority;
      best_age_known = false;
      continue;
    }
    if (priority != best_priority) continue;
    if (!best_age_known) best_age = oldest(m_queues[best]);
    best_age_known = true;
    if (const sched_time age = oldest(q); age < best_age) {
      best = i;
      n = size;
      best_age = age;
    }
  }
  if (best == m_queues.size()) return std::nullopt;

  auto& q = m_queues[best];
  const std::uint64_t item_limit = q.rules.batching.max_batch_items;
  sched_batch out{best, {}, 0};
  out.tickets.reserve(n);
  while (out.tickets.size() < n && q.waiting > 0) {
    auto& l = first_level(q)->second;
    const int peer = l.turns.front();
    auto pit = l.by_peer.find(peer);
    auto& mine = pit->second;
    if (item_limit > 0 && !out.tickets.empty() && out.items + mine.front().r.items > item_limit) break;
    entry e = std::move(mine.front());
    mine.pop_front();
    taken(q, e);
    l.turns.pop_front();
    if (!mine.empty()) l.turns.push_back(peer);  // its next request after one of every other peer's
    // (An emptied peer keeps its entry, and its vector's memory, for its next request: no
    // allocation per request; remove_where drops empty ones.)
    out.tickets.push_back(e.r.ticket);
    out.items += e.r.items;
    q.items -= e.r.items;
    --q.waiting;
    --m_waiting;
  }
  ++q.running;
  ++m_running;
  return out;
}

void scheduler::finished(std::size_t queue_index) {
  auto& q = m_queues.at(queue_index);
  if (q.running == 0 || m_running == 0) throw std::logic_error("scheduler: finished() without a batch running");
  --q.running;
  --m_running;
}

void scheduler::remove_where(kernel_queue& q, const auto& pred, std::vector<sched_request>& out) {
  for (auto& [priority, l] : q.levels) {
    for (auto pit = l.by_peer.begin(); pit != l.by_peer.end();) {
      auto& mine = pit->second;
      const auto first = mine.items.begin() + static_cast<std::ptrdiff_t>(mine.head);
      const auto kept = std::remove_if(first, mine.items.end(), [&](const entry& e) {  // (once per entry)
        if (!pred(e.r)) return false;
        taken(q, e);
        q.items -= e.r.items;
        --q.waiting;
        --m_waiting;
        out.push_back(e.r);
        return true;
      });
      mine.items.erase(kept, mine.items.end());
      if (mine.empty()) {
        std::erase(l.turns, pit->first);
        pit = l.by_peer.erase(pit);
      } else {
        ++pit;
      }
    }
  }
}

void scheduler::expire(sched_time now) {
  if (now < m_next_deadline) return;
  for (auto& q : m_queues)
    remove_where(
        q, [&](const sched_request& r) { return r.deadline <= now; }, m_expired);
  m_next_deadline = no_deadline;
  for (const auto& q : m_queues)
    for (const auto& [priority, l] : q.levels)
      for (const auto& [peer, mine] : l.by_peer)
        for (std::size_t i = mine.head; i < mine.items.size(); ++i)
          m_next_deadline = std::min(m_next_deadline, mine.items[i].r.deadline);
}

std::vector<sched_request> scheduler::take_expired(sched_time now) {
  expire(now);
  return std::exchange(m_expired, {});
}

std::vector<std::uint64_t> scheduler::remove_peer(int peer) {
  std::vector<sched_request> removed;
  for (auto& q : m_queues)
    remove_where(
        q, [&](const sched_request& r) { return r.peer == peer; }, removed);
  std::erase_if(m_expired, [&](const sched_request& r) {
    if (r.peer != peer) return false;
    removed.push_back(r);
    return true;
  });
  std::vector<std::uint64_t> tickets;
  tickets.reserve(removed.size());
  for (const auto& r : removed) tickets.push_back(r.ticket);
  return tickets;
}

sched_time scheduler::wake_by() const {
  sched_time t = m_next_deadline;
  if (m_budget > 0 && m_running >= m_budget) return t;
  for (const auto& q : m_queues) {
    const auto wait = q.rules.batching.max_wait;
    if (q.waiting == 0 || wait.count() <= 0 || !executor_free(q)) continue;
    t = std::min(t, oldest(q) + wait);
  }
  return t;
}

}  // namespace offload::detail
