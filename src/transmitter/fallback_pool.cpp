#include "fallback_pool.hpp"

namespace offload::detail {

fallback_pool::fallback_pool(std::size_t threads, deliver_fn deliver) : m_deliver(std::move(deliver)) {
  if (threads == 0) throw std::invalid_argument("transmitter fallback threads must be at least 1");
  for (std::size_t i = 0; i < threads; ++i) m_threads.emplace_back([this] { run(); });
}

void fallback_pool::push(request_ptr r, fallback_reason why, std::string remote_error) {
  m_queue.push({std::move(r), why, std::move(remote_error)});
}

void fallback_pool::close() {
  m_queue.close();
  for (auto& t : m_threads)
    if (t.joinable()) t.join();
}

void fallback_pool::run() {
  while (auto next = m_queue.pop()) {
    const request_state& r = *next->r;
    message outputs;
    std::string error;
    try {
      outputs = run_cpu(*r.k, r.inputs, {message_kind::reply, r.id, r.kernel_id, status::ok});
    } catch (const std::exception& e) {
      error = "local fallback of kernel '" + std::string(r.k->name()) + "' failed: " + e.what();
    }
    m_deliver(next->r,
              result_access::local(next->reason, std::move(next->remote_error), std::move(outputs), std::move(error)));
  }
}

}  // namespace offload::detail
