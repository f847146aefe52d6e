#pragma once
// A request's state inside the transmitter, shared by its parts (the protocol loop, the
// fallback pool), and how they build a `result` (whose fields are private to the library).

#include "src/base/clock.hpp"

#include <offload/kernel.hpp>
#include <offload/transmitter.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace offload::detail {

using clock_type = std::chrono::steady_clock;

struct request_state {
  std::uint64_t id = 0;
  const kernel* k = nullptr;
  std::uint32_t kernel_id = 0;
  product_views inputs;               // what the kernel reads, remote or local (the fallback)
  message request;                    // copying submit: the inputs encoded once, sent whole
  outgoing_message gathered;          // sharing submit: the head, the payloads the caller's (until sent)
  std::shared_ptr<const void> owner;  // sharing submit: keeps the caller's products alive
  std::uint64_t size = 0;             // of the request message
  std::vector<product_spec> outputs;  // what a correct reply carries
  result_callback done;
  clock_type::time_point submitted;
  clock_type::duration timeout{};  // submit_options::timeout, or the transmitter's
  std::uint64_t submitted_ns = 0;
  std::uint64_t sent_ns = 0;
  std::uint32_t priority = 0;  // submit_options::priority
  std::vector<bool> busy_at;   // by link: receivers that answered `busy` to it (empty: none)
};
using request_ptr = std::shared_ptr<request_state>;

/// The library's way into `result`.
struct result_access {
  /// A receiver's outputs.
  static result remote(message outputs, int receiver, const request_timing& timing) {
    result r;
    r.m_message = std::move(outputs);
    r.m_receiver = receiver;
    r.m_timing = timing;
    return r;
  }
  /// A local run's outputs, or the error that kept the kernel from running (`outputs` empty).
  static result local(fallback_reason why, std::string remote_error, message outputs, std::string error = {}) {
    result r;
    r.m_fallback = why;
    r.m_remote_error = std::move(remote_error);
    r.m_message = std::move(outputs);
    r.m_error = std::move(error);
    return r;
  }
  static void set_latency(result& r, double seconds) noexcept { r.m_latency = seconds; }
};

}  // namespace offload::detail
