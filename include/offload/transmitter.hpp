#pragma once
/// \file
/// The transmitter: what an event loop links. Worker threads `submit` a kernel name and input
/// products; the request goes to a receiver over MPI (or gRPC) and the outputs come back to a callback.
/// When no receiver answers in time, answers with an error, or none is in session (unreachable,
/// not started yet, restarting, or none serves that kernel), the kernel's CPU implementation
/// runs locally (fallback) and the callback still gets a correct result. A receiver that comes
/// up later, or comes back, is used from its first successful handshake on.

#include <offload/host_pool.hpp>
#include <offload/kernel.hpp>
#include <offload/runtime.hpp>
#include <offload/stats.hpp>
#include <offload/transport.hpp>
#include <offload/wire.hpp>

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <future>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

namespace offload {

namespace detail {
struct result_access;
}

/// The handshake with a receiver failed (no answer, no kernel in common, a kernel in another
/// version, a protocol mismatch): thrown by the constructor only with require_receivers.
class handshake_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Why a result was computed locally.
enum class fallback_reason : std::uint8_t {
  none,         ///< it came from a receiver
  timeout,      ///< no reply within the request timeout
  error_reply,  ///< a receiver answered with an error
  no_receiver,  ///< no receiver in session serves its kernel (none configured, none reachable yet)
};
std::string_view to_string(fallback_reason r) noexcept;

/// How a transmitter picks the receiver for a request, among those with free credits.
enum class routing : std::uint8_t { round_robin, least_outstanding };

/// When a remote result's request passed each stage, in seconds of this process's steady
/// clock. The receiver's three times are shifted by the clock offset measured in the handshake,
/// which is zero when both are on one host (one CLOCK_MONOTONIC). All zero for local fallbacks.
struct request_timing {
  double submitted = 0, sent = 0, received = 0, kernel_start = 0, kernel_end = 0, replied = 0;
  double transmitter_queue() const noexcept { return sent - submitted; }
  double network_out() const noexcept { return received - sent; }
  double receiver_queue() const noexcept { return kernel_start - received; }
  double kernel() const noexcept { return kernel_end - kernel_start; }
  double network_back() const noexcept { return replied - kernel_end; }
  /// The five stages above add up to this exactly.
  double round_trip() const noexcept { return replied - submitted; }
};

/// The outcome of one request, handed to its callback exactly once. Owns the output bytes.
class result {
 public:
  /// False only when the kernel could not run at all (its inputs were rejected locally too).
  bool ok() const noexcept { return m_error.empty(); }
  const std::string& error() const noexcept { return m_error; }
  /// The output products (empty when !ok()).
  const product_views& products() const noexcept { return m_message.products(); }
  /// Output `name` as elements of `T`, checked like a kernel's inputs: throws output_error
  /// naming the product and what was expected and found when it is absent (or !ok()), is not a
  /// `T`, or (second form) does not hold `count` elements.
  template <class T> std::span<const T> get(std::string_view name) const {
    const product_view* p = products().find(name);
    if (p == nullptr)
      throw output_error("result has no output '" + std::string(name) + "'" +
                         (ok() ? std::string() : " (the request failed: " + m_error + ")"));
    if (p->type != dtype_of<T>)
      throw output_error("output '" + std::string(name) + "': expected " + std::string(dtype_name(dtype_of<T>)) +
                         ", found " + std::string(dtype_name(p->type)));
    return {reinterpret_cast<const T*>(p->data), static_cast<std::size_t>(p->count)};
  }
  template <class T> std::span<const T> get(std::string_view name, std::uint64_t count) const {
    const auto values = get<T>(name);
    if (values.size() != count)
      throw output_error("output '" + std::string(name) + "': expected " + std::to_string(count) + " elements of " +
                         std::string(dtype_name(dtype_of<T>)) + ", found " + std::to_string(values.size()));
    return values;
  }
  /// The receiver that computed it (its rank; over gRPC its index in the address list), or -1
  /// for a local fallback.
  int receiver() const noexcept { return m_receiver; }
  fallback_reason fallback() const noexcept { return m_fallback; }
  /// The receiver's error text when fallback() == error_reply.
  const std::string& remote_error() const noexcept { return m_remote_error; }
  /// Seconds from submit to delivery.
  double latency() const noexcept { return m_latency; }
  /// Per-stage times of a remote result (see request_timing).
  const request_timing& timing() const noexcept { return m_timing; }

 private:
  friend struct detail::result_access;  // the library builds results
  message m_message;
  std::string m_error;
  std::string m_remote_error;
  int m_receiver = -1;
  fallback_reason m_fallback = fallback_reason::none;
  double m_latency = 0.0;
  request_timing m_timing;
};

/// Per-request settings of a submit.
struct submit_options {
  /// The request's priority at the receiver: 1 is the highest, then 2, 3, ...; 0: the
  /// receiver's default for the kernel (receiver_config::kernel_priority). Among requests
  /// waiting for one kernel, a higher level is batched first; equal levels share fairly.
  std::uint32_t priority = 0;
  /// From submit to reply for this request; past it, it falls back as at the transmitter's
  /// timeout (and the receiver gets its deadline, transmitter_config::send_deadlines). Zero:
  /// transmitter_config::timeout. Negative: refused at submit (std::invalid_argument).
  std::chrono::microseconds timeout{0};
};

/// Called once per request: on the progress thread for remote results, on a fallback thread
/// for local ones. Keep it short (hand heavy work to your own threads); it must not throw.
using result_callback = std::function<void(result&&)>;

struct transmitter_config {
  /// Most requests outstanding at each receiver; a receiver that grants fewer (its hello_ack
  /// carries its credits) gets fewer.
  std::uint32_t credits = 8;
  /// From submit to reply; past it the request falls back to the CPU, and its receiver gets no
  /// new requests until it answers again (any message from it will do).
  std::chrono::microseconds timeout = std::chrono::seconds(30);
  routing policy = routing::round_robin;
  /// Threads that run fallbacks.
  std::size_t fallback_threads = 1;
  /// Limits applied to replies, and to requests: narrowed in the handshake to the smallest of
  /// every receiver's, so that a request no receiver would accept is refused at submit.
  wire_limits limits;
  /// The pooled host memory every message, product and reply of this side comes from: how much
  /// free memory it keeps for reuse, pre-faulting, huge pages (offload/host_pool.hpp).
  host_pool_config memory;
  /// How long the constructor waits for every receiver's hello_ack (one that cannot be reached
  /// is not waited for: gRPC says so at once), and close() for goodbye_acks (for a receiver set
  /// aside after a request timed out: ten `timeout`s at most).
  std::chrono::milliseconds handshake_timeout = std::chrono::seconds(60);
  /// False (the default): the constructor never fails because a receiver is unreachable, late
  /// or refuses; it returns after handshake_timeout at most, logging what each receiver that is
  /// not in session did. Until a receiver is in session its requests fall back
  /// (fallback_no_receiver); the handshake goes on in the background (a late MPI rank answers
  /// when it starts; a gRPC receiver that is down, or whose stream ends, e.g. a restart, is
  /// reconnected with backoff), and a receiver is used from its first successful handshake on.
  /// True: the strict start: the constructor throws handshake_error unless every receiver
  /// answers within handshake_timeout, accepts, and serves every kernel of the registry in
  /// the same version (after saying goodbye to every receiver).
  bool require_receivers = false;
  /// The longest wait between two attempts to reach a receiver that is down: the first comes
  /// after 100 ms, and each wait doubles up to this.
  std::chrono::milliseconds reconnect_max = std::chrono::seconds(5);
  /// Each request tells its receiver how long this side still waits for it (the rest of
  /// `timeout` when it is sent), so that a request whose event has fallen back is answered
  /// `expired` and never run (docs/protocol.md section 2.4). False: no deadline travels.
  bool send_deadlines = true;
};

struct transmitter_stats {
  std::uint64_t submitted = 0;
  std::uint64_t remote = 0;     ///< results computed by a receiver
  std::uint64_t fallbacks = 0;  ///< results computed locally (sum of the three below)
  std::uint64_t fallback_timeout = 0;
  std::uint64_t fallback_error = 0;
  std::uint64_t fallback_no_receiver = 0;
  std::uint64_t failed = 0;        ///< results with !ok()
  std::uint64_t late_replies = 0;  ///< replies after their request fell back, and every `expired` answer
  /// The receivers' kernel time (kernel start to end in the reply) of late replies: device
  /// time spent on events that had fallen back already (a batch's time counts once per reply).
  std::uint64_t late_kernel_ns = 0;
  std::uint64_t suspensions = 0;  ///< times a receiver was set aside after a request to it timed out
  std::uint64_t sessions_lost =
      0;  ///< sessions that ended early: dropped by the receiver (idle timeout), its stream ended
  /// Sessions opened again with a receiver after an earlier one ended (it came back).
  std::uint64_t reconnects = 0;
  /// `busy` answers (a receiver's queue for the kernel was full): the request went to another
  /// receiver, or fell back (fallback_error) when none was left to try.
  std::uint64_t busy = 0;
  /// `expired` answers: the receiver did not run a request whose deadline had passed (its event
  /// had fallen back already, or falls back now).
  std::uint64_t expired = 0;
  /// Answers whose outputs broke the kernel's specs: `bad_output` from a receiver (its kernel
  /// wrote an output as another dtype), or a reply whose outputs differ from what this side's
  /// output_specs says (the kernel differs between the two sides under one version). A kernel
  /// defect: the request fell back (fallback_error), and the first per kernel is logged.
  std::uint64_t bad_outputs = 0;
  std::uint64_t bytes_out = 0;
  std::uint64_t bytes_in = 0;

  /// Every counter above, once (offload/stats.hpp).
  static constexpr auto counters() {
    using s = transmitter_stats;
    return std::array<counter_field<s>, 17>{{{"submitted", &s::submitted},
                                             {"remote", &s::remote},
                                             {"fallbacks", &s::fallbacks},
                                             {"fallback_timeout", &s::fallback_timeout, true},
                                             {"fallback_error", &s::fallback_error, true},
                                             {"fallback_no_receiver", &s::fallback_no_receiver, true},
                                             {"failed", &s::failed},
                                             {"late_replies", &s::late_replies, true},
                                             {"late_kernel_ns", &s::late_kernel_ns, true},
                                             {"suspensions", &s::suspensions, true},
                                             {"sessions_lost", &s::sessions_lost, true},
                                             {"reconnects", &s::reconnects},
                                             {"busy", &s::busy, true},
                                             {"expired", &s::expired, true},
                                             {"bad_outputs", &s::bad_outputs, true},
                                             {"bytes_out", &s::bytes_out},
                                             {"bytes_in", &s::bytes_in}}};
  }
};

/// Sends requests to the receivers `link` names: `mpi_link{ranks}` (offload/mpi.hpp) or
/// `grpc_link{addresses}` (offload/grpc.hpp). The constructor starts the handshake with each
/// and waits for the answers (transmitter_config::handshake_timeout, require_receivers). A
/// receiver may serve more kernels than this side's registry; this side's kernels it lacks (or
/// has in another version) go to receivers that have them, else fall back. Throws
/// std::invalid_argument for bad settings, std::runtime_error when the build lacks the
/// transport, handshake_error only with require_receivers. Thread-safe: any number of threads
/// may submit at once. Destroy it before the runtime.
class transmitter {
 public:
  transmitter(runtime& rt, const kernel_registry& kernels, const transport& link, transmitter_config config = {});
  ~transmitter();
  transmitter(const transmitter&) = delete;
  transmitter& operator=(const transmitter&) = delete;

  /// Encodes the inputs (one copy: the caller may reuse or free them as soon as it returns)
  /// and queues the request; never waits on the network.
  /// Throws std::invalid_argument for a kernel name this side does not have, input_error for
  /// inputs the kernel rejects, std::length_error for a request over the maximum message size.
  void submit(std::string_view kernel, const product_views& inputs, result_callback done, submit_options options = {});
  /// The same, delivering through a future.
  std::future<result> submit(std::string_view kernel, const product_views& inputs, submit_options options = {});
  /// The same without copying the payloads: they go to the transport from where they lie, and
  /// the fallback reads them there. The transmitter holds `inputs.owner` until the request is
  /// sent and its result delivered, whichever is later; the bytes must not change meanwhile.
  /// (Over MPI, requests under mpi_link::parts_from bytes are still copied, on the progress
  /// thread: one copy costs less than a message per payload.)
  void submit(std::string_view kernel, shared_products inputs, result_callback done, submit_options options = {});
  std::future<result> submit(std::string_view kernel, shared_products inputs, submit_options options = {});

  /// A product of `count` elements of `type` in this transmitter's pooled memory (see
  /// offload/host_pool.hpp), contents uninitialised: fill it, then submit it with
  /// shared_products::adopt (no copy). Its block returns to the pool when the last owner drops
  /// it, so that steady-state events allocate and page-fault nothing. Throws std::length_error
  /// for a product over the maximum message size. Thread-safe.
  pooled_product make_product(std::string name, dtype type, std::uint64_t count);
  template <class T> pooled_product make_product(std::string name, std::uint64_t count) {
    return make_product(std::move(name), dtype_of<T>, count);
  }
  /// The pool's counters: blocks reused and made, bytes cached, in use and pinned.
  host_pool_stats memory() const;

  /// Waits until every submitted request has been delivered, then says goodbye to each
  /// receiver and waits for its acknowledgement. Idempotent; the destructor calls it.
  void close();
  transmitter_stats stats() const;

 private:
  void start();  // attach, handshake
  struct impl;
  std::shared_ptr<impl> m_impl;
};

}  // namespace offload
