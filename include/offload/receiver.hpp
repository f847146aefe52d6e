#pragma once
/// \file
/// The receiver: serves any number of transmitters over one transport, runs their requests
/// on a backend and sends the outputs back.

#include <offload/backend.hpp>
#include <offload/host_pool.hpp>
#include <offload/kernel.hpp>
#include <offload/runtime.hpp>
#include <offload/stats.hpp>
#include <offload/transport.hpp>
#include <offload/wire.hpp>

#include <array>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace offload {

/// Where a receiver runs kernels, among the library's backends (offload/backend.hpp).
enum class backend_kind : std::uint8_t {
  automatic,  ///< cuda where it can run, else cpu, saying why ("auto")
  cpu,        ///< "cpu"
  cuda,       ///< "cuda": refused, with the reason, where the build has no CUDA or no device is usable
};
/// The name of a kind, as the flags and reports spell it ("auto", "cpu", "cuda").
std::string_view to_string(backend_kind k) noexcept;
/// The kind of a name; nullopt for any other.
std::optional<backend_kind> backend_from_name(std::string_view name) noexcept;

struct receiver_config {
  /// Most requests one transmitter may have outstanding here; more get `credit_exceeded`.
  /// With P transmitters at most P x credits requests are queued, whatever they send.
  std::uint32_t credits = 8;
  /// Batches of one kernel that run at once (Triton's instance count), each on a thread of
  /// its own; kernel_instances overrides it per kernel. Every kernel has its own, so that a
  /// slow kernel's requests never hold another kernel's.
  std::size_t threads = 1;
  /// Batches running at once, all kernels together (a budget of threads shared by the
  /// kernels); 0: no limit beyond each kernel's instances.
  std::size_t max_threads = 0;
  /// Per kernel, by name: instances (overrides `threads`), the priority of requests that give
  /// none (1 the highest, the default; transmitters set theirs per submit), and the most
  /// requests waiting (overrides `max_queue`). Names must be kernels of the registry.
  std::map<std::string, std::uint32_t> kernel_instances;
  std::map<std::string, std::uint32_t> kernel_priority;
  std::map<std::string, std::uint32_t> kernel_max_queue;
  /// Most requests waiting for one kernel; the next is answered `busy` at once, not queued
  /// (its transmitter tries another receiver, else runs it locally). 0: no limit (the credits
  /// still bound the queue).
  std::uint32_t max_queue = 0;
  /// Largest message accepted, products per message, name length.
  wire_limits limits;
  /// The pooled host memory every message and reply of this side comes from: how much free
  /// memory it keeps for reuse, pre-faulting, huge pages (offload/host_pool.hpp). With the CUDA
  /// backend its blocks are pinned.
  host_pool_config memory;
  /// Where kernels run (backend_kind), unless `custom_backend` is set.
  backend_kind backend = backend_kind::automatic;
  /// A backend of the application's own (offload/backend.hpp), e.g. the lab's emulated device
  /// (offload/emulation.hpp): used instead of `backend` when set. The receiver runs at least its
  /// concurrency() kernel threads.
  std::shared_ptr<offload::backend> custom_backend;
  /// CUDA device for the cuda backend; negative: the rank's local rank modulo the visible devices.
  int device = -1;
  /// Dynamic batching, as Triton's (src/scheduler/scheduler.hpp has every rule): when one of a
  /// kernel's instances is free, its waiting requests form a batch of `max_batch` requests
  /// (1: no batching; 0: no limit) when that many wait, else of the largest `preferred_batch`
  /// size they can form, else of all of them once the oldest has waited `max_wait`. While
  /// every instance is busy the requests keep waiting, so that batches grow with the load.
  /// A batch takes the highest priority first and, within a priority, one request of each
  /// transmitter in turn: a newcomer waits for one batch at most.
  std::uint32_t max_batch = 1;
  std::chrono::microseconds max_wait{0};
  std::vector<std::uint32_t> preferred_batch;
  /// Per kernel, by name: its own dynamic batching (a model repository's dynamic_batching),
  /// overriding the four settings above; `max_batch_items` bounds the items (kernel::items:
  /// a model's rows) of one batch.
  struct batching {
    std::uint32_t max_batch = 1;
    std::uint64_t max_batch_items = 0;
    std::vector<std::uint32_t> preferred;
    std::chrono::microseconds max_wait{0};
  };
  std::map<std::string, batching> kernel_batching;
  /// A transmitter in session that sends nothing for this long is dropped: its credits are
  /// reclaimed, replies still owed to it are discarded, and it no longer counts as expected.
  /// Transmitters learn it in the handshake and send keepalives when idle, so only a vanished
  /// (or stopped) one is dropped. Zero: never.
  std::chrono::milliseconds idle_timeout = std::chrono::seconds(60);
  /// What counts toward `expected_peers`. True (a job's own receivers, which serve a known set
  /// of transmitters): every peer, once, whatever the outcome: goodbye, dropped, or turned away
  /// at the handshake (a transmitter turned away does not try again). False (a shared service,
  /// offload-serve --peers): only sessions that were served, i.e. whose handshake succeeded and
  /// that then sent a request or said goodbye; a client that fails the handshake or leaves at
  /// once does not use up the count.
  bool count_every_peer = true;
  /// Largest work one request may declare, in floating-point operations (kernel::cost of its
  /// inputs); a larger one is refused with `too_large` before it is queued. It bounds how long
  /// one request can hold a kernel thread where the kernel states its cost (kernels that state
  /// none are bounded by the message size only). Zero: no limit.
  double max_work = 0;
  /// A request for a kernel that declares itself cheap (kernel::cheap_ns_per_byte) runs on the
  /// progress thread when its bound for the request's bytes is within this budget, the backend
  /// is the CPU and no request of that kernel waits: no hand-off to a kernel thread and back.
  /// The progress thread serves nobody while it runs, so a kernel whose inline run takes more
  /// than 10 times the budget (and 1 ms) of the progress thread's CPU time (not wall time: a
  /// busy machine that takes the core away does not count) runs on its own threads for a
  /// while, with a warning: 1 s, doubling with each such run up to 64 s, and back to 1 s after
  /// an inline run within the budget. Zero: never inline.
  std::chrono::microseconds inline_budget{50};
};

/// What a receiver did; every count is since construction.
/// One kernel's (model's) requests at a receiver: what NVIDIA Triton reports per model and
/// version (its nv_inference_* metrics; offload-serve --metrics exports these under those names).
/// Times are sums over the requests, in nanoseconds, from the receiver's clock: request = from
/// its arrival to its answer being handed to the transport; queue = arrival to an executor
/// taking its batch; input = from then to the kernel's start (outputs placed, buffers taken);
/// infer = the kernel's run (the batch's, counted for each of its requests, as Triton does);
/// output = the kernel's end to the answer handed to the transport.
struct kernel_counters {
  std::string version;
  std::uint64_t success = 0;     ///< requests answered with outputs
  std::uint64_t failure = 0;     ///< requests of this kernel answered with an error (any reason)
  std::uint64_t inferences = 0;  ///< items (kernel::items: rows, jets) of its successful requests
  std::uint64_t executions = 0;  ///< batches run (a batch of several requests is one)
  std::uint64_t request_ns = 0, queue_ns = 0, input_ns = 0, infer_ns = 0, output_ns = 0;
};

/// One session of a receiver (receiver::sessions()).
struct session_info {
  std::string peer;             ///< as the logs name it ("rank 3", "peer 2 (ipv4:10.0.0.7:53412, client alice)")
  std::string client;           ///< the tokens file's client name; empty without tokens
  std::uint32_t in_flight = 0;  ///< its requests accepted and not yet answered
};

struct receiver_stats {
  std::uint64_t requests = 0;            ///< requests accepted and run
  std::uint64_t replies = 0;             ///< output replies sent
  std::uint64_t error_replies = 0;       ///< error replies sent (all reasons)
  std::uint64_t malformed = 0;           ///< messages that failed decoding or exceeded limits
  std::uint64_t handshake_failures = 0;  ///< peers turned away at hello
  std::uint64_t bytes_in = 0;
  std::uint64_t bytes_out = 0;
  /// Peers (sessions) ended that count toward `expected_peers` (see receiver_config::count_every_peer).
  std::uint64_t peers_finished = 0;
  std::uint64_t peers_dropped = 0;      ///< peers dropped after `idle_timeout` of silence
  std::uint64_t replies_discarded = 0;  ///< replies owed to dropped peers: not sent, or their sends abandoned
  /// Requests queued, not yet started, of peers that no longer wait for them (dropped, stream
  /// ended, said goodbye): removed from the queue unrun.
  std::uint64_t work_dropped = 0;
  /// Requests answered `busy` (their kernel's queue was at max_queue) and `expired` (their
  /// deadline passed before they could start: never run).
  std::uint64_t busy = 0;
  std::uint64_t expired = 0;
  /// Requests answered `bad_output`: their kernel broke its own output specs (wrote an output
  /// as another dtype, or a joined run's outputs did not split): a defect of the kernel.
  std::uint64_t bad_outputs = 0;
  std::string backend;              ///< the backend in use (backend::name: "cpu", "cuda", "emulated")
  std::string backend_description;  ///< for cuda: the device report (name, SMs, memory, PCI id, versions)
  /// batch_sizes[n]: how many batches of n requests ran (index 0 unused).
  std::vector<std::uint64_t> batch_sizes;
  /// Items (kernel::items: jets, taus, ...) in every batch run: a device profile's batch unit.
  std::uint64_t batch_items = 0;
  /// Requests run on the progress thread (receiver_config::inline_budget), and kernels moved
  /// off it after a run that took too long.
  std::uint64_t inline_runs = 0;
  std::uint64_t inline_demotions = 0;
  /// Replies sent from the request's own buffer (kernel::in_place), with no copy.
  std::uint64_t in_place_replies = 0;
  /// Seconds with at least one batch running (the device busy time, whatever the backend).
  double busy_s = 0;
  /// The integral over time of the requests queued (accepted, not yet running), in request
  /// seconds: divided by the wall time, the mean queue depth.
  double queued_request_s = 0;
  /// Per kernel name, the kernels that were called (kernel_counters).
  std::map<std::string, kernel_counters> kernels;
  /// Calls refused for want of a valid token (a service with --tokens).
  std::uint64_t unauthenticated = 0;

  /// Every counter above, once (offload/stats.hpp).
  static constexpr auto counters() {
    using s = receiver_stats;
    return std::array<counter_field<s>, 14>{{{"requests", &s::requests},
                                             {"replies", &s::replies},
                                             {"handshake_failures", &s::handshake_failures},
                                             {"bytes_in", &s::bytes_in},
                                             {"bytes_out", &s::bytes_out},
                                             {"peers_finished", &s::peers_finished},
                                             {"peers_dropped", &s::peers_dropped, true},
                                             {"replies_discarded", &s::replies_discarded, true},
                                             {"work_dropped", &s::work_dropped, true},
                                             {"busy", &s::busy, true},
                                             {"expired", &s::expired, true},
                                             {"error_replies", &s::error_replies, true},
                                             {"malformed", &s::malformed, true},
                                             {"bad_outputs", &s::bad_outputs, true}}};
  }
};

/// Serves `expected_peers` transmitters over `link`: `mpi_link{}` (any rank of its
/// communicator, offload/mpi.hpp) or `grpc_listen{address}` (offload/grpc.hpp; it listens once
/// constructed). Construction attaches it to the progress thread; it serves until every expected
/// peer said goodbye (or was turned away at the handshake, or dropped after `idle_timeout`) and
/// every reply went out. Throws std::invalid_argument for bad settings, std::runtime_error when
/// it cannot listen or the build lacks the transport. Not copyable; destroy it before the runtime.
class receiver {
 public:
  receiver(runtime& rt, const kernel_registry& kernels, const transport& link, std::size_t expected_peers,
           receiver_config config = {});
  /// The port it listens on (gRPC, KServe v2; 0 over MPI); with listen_all, the first one's.
  int port() const noexcept;
  /// Every port it listens on, in the order of listen_all::each (one entry for one transport).
  std::vector<int> ports() const;
  ~receiver();
  receiver(const receiver&) = delete;
  receiver& operator=(const receiver&) = delete;

  /// Blocks until the receiver is done serving, then returns its statistics.
  receiver_stats wait();
  /// Waits at most `for_at_most` for the same; true when it is done.
  bool wait_for(std::chrono::milliseconds for_at_most);
  /// A snapshot of the statistics (any thread).
  receiver_stats stats() const;
  /// The pool's counters: blocks reused and made, bytes cached, in use and pinned.
  host_pool_stats memory() const;
  /// The sessions open now (any thread; asks the progress thread and waits for its answer).
  std::vector<session_info> sessions() const;
  /// Begins a graceful drain (any thread): no new connection is taken (a gRPC stream or KServe
  /// call is answered UNAVAILABLE, KServe ServerReady says false), requests arriving on open
  /// sessions are answered `busy` (their transmitters try another receiver, else their CPU),
  /// and every request already accepted runs and is answered. in_flight() then falls to 0.
  void drain();
  /// Requests accepted and not yet answered (any thread; asks the progress thread).
  std::size_t in_flight() const;

 private:
  struct impl;
  std::unique_ptr<impl> m_impl;
};

}  // namespace offload
