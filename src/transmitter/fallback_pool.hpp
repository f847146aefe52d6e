#pragma once
// The fallback: threads that run a request's kernel on the local CPU when no receiver answers
// in time, answers with an error, or there is none, and hand the result on.

#include "request.hpp"
#include "src/base/work_queue.hpp"

#include <functional>
#include <string>
#include <thread>
#include <vector>

namespace offload::detail {

class fallback_pool {
 public:
  /// `deliver` gets each result, on one of the pool's threads; it must not throw.
  using deliver_fn = std::function<void(const request_ptr&, result&&)>;
  fallback_pool(std::size_t threads, deliver_fn deliver);
  ~fallback_pool() { close(); }
  fallback_pool(const fallback_pool&) = delete;
  fallback_pool& operator=(const fallback_pool&) = delete;

  /// Queues `r` to run locally; `remote_error` is the receiver's answer when there was one.
  void push(request_ptr r, fallback_reason why, std::string remote_error = {});
  /// Runs what is queued, then joins the threads. Idempotent.
  void close();

 private:
  struct job {
    request_ptr r;
    fallback_reason reason;
    std::string remote_error;
  };
  void run();
  deliver_fn m_deliver;
  work_queue<job> m_queue;
  std::vector<std::thread> m_threads;
};

}  // namespace offload::detail
