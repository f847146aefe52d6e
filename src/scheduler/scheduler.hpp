#pragma once
// The scheduler: which waiting requests run next, as one batch, on a free executor. Every
// batching rule of the library lives here once; the receiver drives it with real time and
// offload-sim's GPU server with simulated time. No MPI, no threads, no clock of its own: the
// caller says what time it is, so that unit tests run it on a fake clock.
//
// Queues: one per kernel (a Triton model), each with its rules (queue_rules). A request
// carries its peer, its items (kernel::items: jets, taus, ...), a priority and a deadline.
//
// The rules, in the order they are applied (docs/design.md, "The scheduler"):
//  - admission: a queue holding `max_queue` requests answers `busy` to the next one (the
//    caller replies at once; nothing is queued);
//  - deadlines: a request whose deadline has passed before its batch starts is taken out and
//    handed back by take_expired(), never in a batch;
//  - executors: a batch of a queue starts only while fewer than `instances` of its batches run
//    (Triton's instance count) and fewer than the thread budget run in all;
//  - which queue: among queues that may start a batch now, the one whose best waiting request
//    has the highest priority (the lowest number), then the one whose oldest request is oldest;
//  - which requests: the highest priority first; within a priority, round robin across peers,
//    one request of each peer in turn, a peer that arrives joining the end of the turns. A
//    newcomer's request therefore waits for what is running plus at most one batch, whatever
//    max_batch, and a burst of one peer never holds another's;
//  - how many (Triton's dynamic batcher): a full batch (max_batch requests, or max_batch_items
//    items) goes at once; else the largest preferred size that the waiting requests can form;
//    else, once the oldest request has waited max_wait (at once when it is 0), everything
//    waiting up to the limits. Preferred sizes count requests (Triton's count batch elements:
//    here a request is one element of a batch whatever its items). A batch always holds at
//    least one request, even one whose items alone exceed max_batch_items.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace offload::detail {

/// Times are durations since any fixed origin (steady_clock's epoch for the receiver,
/// the start of a simulation for offload-sim).
using sched_time = std::chrono::nanoseconds;
inline constexpr sched_time no_deadline = sched_time::max();

struct batching_rules {
  std::uint32_t max_batch = 1;           ///< requests per batch (1: no batching); 0: no limit
  std::uint64_t max_batch_items = 0;     ///< items per batch; 0: no limit
  std::vector<std::uint32_t> preferred;  ///< preferred batch sizes, in requests
  std::chrono::nanoseconds max_wait{0};  ///< longest a request waits for a batch to fill
  /// Empty when valid, else what is wrong (a preferred size of 0 or over max_batch).
  std::string problem() const;
};

struct queue_rules {
  batching_rules batching;
  std::uint32_t instances = 1;         ///< batches of this queue running at once; 0: only the budget limits them
  std::uint32_t max_queue = 0;         ///< requests waiting; 0: no limit
  std::uint32_t default_priority = 1;  ///< for requests that give priority 0 (1 is the highest)
};

struct sched_request {
  std::uint64_t ticket = 0;  ///< the caller's name for it, handed back in batches
  int peer = 0;
  std::uint64_t items = 1;
  std::uint32_t priority = 0;  ///< 1 is the highest; 0: the queue's default
  sched_time deadline = no_deadline;
};

struct sched_batch {
  std::size_t queue = 0;
  std::vector<std::uint64_t> tickets;  ///< in the order they were taken
  std::uint64_t items = 0;
};

class scheduler {
 public:
  /// `budget`: batches running at once, all queues together; 0: no limit but the queues' own.
  explicit scheduler(std::uint32_t budget = 0) : m_budget(budget) {}
  /// Adds a queue and returns its index (0, 1, ...). Throws std::invalid_argument for bad rules.
  std::size_t add_queue(queue_rules rules);
  std::size_t queues() const noexcept { return m_queues.size(); }
  const queue_rules& rules(std::size_t queue) const { return m_queues.at(queue).rules; }

  enum class admission { queued, busy };
  /// A request arrives at `now`. `busy`: the queue is at max_queue and it was not queued.
  admission push(std::size_t queue, const sched_request& r, sched_time now);
  /// The next batch that may start at `now`, counted as running until finished(); nullopt when
  /// none may (nothing waits, no executor is free, or what waits is waiting to fill).
  std::optional<sched_batch> next(sched_time now);
  /// A batch of `queue` has ended: its executor is free.
  void finished(std::size_t queue);
  /// The requests whose deadline is at or before `now`, taken out of the queues.
  std::vector<sched_request> take_expired(sched_time now);
  /// Takes every waiting request of `peer` out of the queues; returns their tickets.
  std::vector<std::uint64_t> remove_peer(int peer);
  /// The earliest time at which next() or take_expired() may have something new without any
  /// other call (a max_wait running out, a deadline passing); no_deadline when none.
  sched_time wake_by() const;

  std::size_t waiting() const noexcept { return m_waiting; }
  /// Nothing waits and no expired request is left to take: next() and take_expired() have nothing.
  bool idle() const noexcept { return m_waiting == 0 && m_expired.empty(); }
  std::size_t waiting(std::size_t queue) const { return m_queues.at(queue).waiting; }
  std::size_t running() const noexcept { return m_running; }
  std::size_t running(std::size_t queue) const { return m_queues.at(queue).running; }

 private:
  struct entry {
    sched_request r;
    sched_time arrived;
    std::uint64_t seq;  // its place among the queue's arrivals
  };
  // One peer's requests at one level, in arrival order: a vector read from `head` (no
  // allocation while empty, unlike a deque; emptied, it starts again at 0, and the taken
  // front is dropped once it is half of it).
  struct fifo {
    std::vector<entry> items;
    std::size_t head = 0;
    bool empty() const noexcept { return head == items.size(); }
    entry& front() { return items[head]; }
    const entry& front() const { return items[head]; }
    void pop_front() {
      if (++head == items.size()) {
        items.clear();
        head = 0;
      } else if (head >= 32 && 2 * head >= items.size()) {  // a peer that never empties: compact
        items.erase(items.begin(), items.begin() + static_cast<std::ptrdiff_t>(head));
        head = 0;
      }
    }
  };
  // One priority level of a queue: each peer's requests in arrival order, and the peers' turns
  // (exactly the peers with requests). A level stays once made (there are few), and a peer's
  // entry while it has had requests since the last remove_where, empty or not.
  struct level {
    std::unordered_map<int, fifo> by_peer;
    std::deque<int> turns;  // peers with requests, the next to be served first
  };
  struct kernel_queue {
    queue_rules rules;
    std::map<std::uint32_t, level> levels;  // by priority, highest (lowest number) first; some empty
    std::size_t waiting = 0;
    std::uint64_t items = 0;
    std::uint32_t running = 0;
    // Every arrival still waiting, and some taken ones, in arrival order (push times never go
    // back): the front is the oldest waiting request once taken ones are trimmed off it.
    std::deque<std::pair<sched_time, bool>> arrivals;  // (arrived, taken)
    std::uint64_t first_seq = 0;                       // the seq of arrivals.front()
    std::uint64_t next_seq = 0;
  };
  /// Marks `e` as no longer waiting in `q` (taken, expired or removed).
  static void taken(kernel_queue& q, const entry& e);
  /// How many of `q`'s requests a batch would take now; 0 when it must wait.
  std::size_t batch_size(const kernel_queue& q, sched_time now) const;
  /// The arrival time of `q`'s oldest waiting request.
  static sched_time oldest(const kernel_queue& q);
  /// `q`'s highest level with requests (something must wait).
  static std::map<std::uint32_t, level>::iterator first_level(kernel_queue& q);
  static std::map<std::uint32_t, level>::const_iterator first_level(const kernel_queue& q);
  /// Moves the requests whose deadline is at or before `now` to m_expired.
  void expire(sched_time now);
  void remove_where(kernel_queue& q, const auto& pred, std::vector<sched_request>& out);
  bool executor_free(const kernel_queue& q) const;

  std::vector<kernel_queue> m_queues;
  std::uint32_t m_budget;
  std::size_t m_running = 0;
  std::size_t m_waiting = 0;
  sched_time m_next_deadline = no_deadline;  // no waiting request's deadline is earlier
  std::vector<sched_request> m_expired;
};

}  // namespace offload::detail
