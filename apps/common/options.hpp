#pragma once
// The flags of offload-run and offload-serve, as data (the tables: flags.cpp): one table per role (receiver_flags,
// run_flags), each row the flag, the setting it feeds, its name in offload-run's report and
// its registration; add_options and the report walk them.

#include "workload.hpp"

#include <offload/device_profile.hpp>
#include <offload/emulation.hpp>
#include <offload/grpc.hpp>
#include <offload/receiver.hpp>
#include <offload/transmitter.hpp>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace offload::app {

inline constexpr std::uint32_t max_batch_limit = 4096;

struct options {
  std::vector<std::string> argv;
  int receivers = -1;  // -1: 1 in remote mode, 0 in local mode
  std::string workload = "single";
  std::string mode = "remote";
  double time_scale = 1.0;
  double cpu_before_ms = -1;  // -1: the workload's
  double cpu_after_ms = -1;
  double ns_per_iteration = 0;             // 0: measured at start-up
  std::vector<std::uint64_t> module_work;  // empty: derived from the modules' CPU costs
  std::string kernel = "mlp";
  std::uint64_t events = 1000;
  std::uint64_t warmup_events = 0;
  int threads = 2;
  int inflight = 4;
  bool validate = false;
  double timeout_ms = 30000;
  double handshake_timeout_ms = 60000;  // transmitters: transmitter_config::handshake_timeout
  bool require_receivers = false;       // transmitters: transmitter_config::require_receivers
  std::string json;
  std::string csv;
  std::string calibration_file;  // --calibrate: offload-sim's library costs, measured by this run
  bool quiet = false;
  bool bind = false;
  std::uint64_t size = 0;  // 0: the kernel's default
  std::uint64_t work = 1000;
  std::uint64_t seed = 12345;
  std::uint32_t credits = 8;
  bool credits_given = false;   // else offload-run sets them from what a run needs (apps/offload_run/main.cpp)
  std::string profile;          // --profile: a device profile's name or file (the emulated backend)
  device_profile profile_data;  // read from it by finish_receiver_options
  std::vector<std::uint32_t> preferred_batch;
  std::string cpu_work = "real";     // or "emulated": client CPU work held, not computed
  std::size_t fallback_threads = 0;  // 0: --threads
  std::size_t receiver_threads = 1;
  std::string routing = "round_robin";
  std::string backend = "auto";
  std::vector<std::string> kernel_set;
  std::vector<std::string> plugins;
  std::string model_repository;  ///< a Triton model repository whose models are kernels (docs/models.md)
  std::uint64_t max_message_bytes = std::uint64_t{1} << 30;
  std::uint32_t max_products = 1024;
  std::uint32_t max_name_length = 255;
  double idle_timeout_ms = 60000;
  std::uint64_t blocking_receive_below = 256 << 10;
  std::uint64_t parts_from = 32 << 10;
  bool copy_inputs = false;
  bool same_inputs = false;
  bool fresh_malloc = false;  // transmitters: inputs in malloc'd memory, not the transmitter's pool
  double inline_budget_us = 50;
  double tolerance = 1e-5;
  std::string log_level = "warn";
  std::string wait_policy = "adaptive";
  int idle_sleep_us = 200;
  int spin_us = 50;
  int yield_us = 2000;
  int device = -1;
  std::uint32_t max_batch = 1;                // 0: no limit
  std::uint32_t max_queue = 0;                // receivers: requests waiting per kernel; 0: no limit
  std::size_t max_threads = 0;                // receivers: batches running at once, all kernels; 0: no limit
  std::vector<std::string> kernel_instances;  // receivers: NAME=N
  std::vector<std::string> kernel_priority;   // receivers: NAME=P
  std::vector<std::string> kernel_max_queue;  // receivers: NAME=N
  std::uint32_t priority = 0;                 // transmitters: every request's; 0: the receiver's default
  bool no_deadlines = false;                  // transmitters: requests carry no deadline
  double max_work = 0;                        // flops per request; 0: no limit
  double max_wait_us = 0;
  std::string distance = "same-node";  // a preset of inject_latency_ms; "custom" when given
  double inject_latency_ms = 0;        // one-way, emulated in the transport
  double inject_jitter_ms = 0;
  double inject_bandwidth_gbit = 0;  // 0: unlimited
  double site_link_gbit = 0;         // receivers: emulated shared link into their site; 0: none
  std::string transport = "mpi";     // the data path: mpi, or grpc (MPI then only starts and reports)
  std::string listen;  // grpc: where receiver ranks listen (port 0: any free one); empty: 127.0.0.1:0 on one host, else
                       // 0.0.0.0:0
  std::string kserve_listen;                  // receiver ranks also serve KServe v2 here (empty: no)
  std::size_t grpc_threads = 2;               // grpc: completion-queue threads of a receiver
  std::size_t grpc_memory = 0;                // grpc: a receiver's gRPC memory bound (resource quota); 0: none
  std::uint32_t hello_timeout_ms = 10000;     // grpc: a stream silent this long after opening is cut
  std::uint32_t write_timeout_ms = 30000;     // grpc: a reply waiting this long to be read cuts its stream
  std::size_t max_streams_per_address = 256;  // grpc: streams open at once from one client address
  // A gRPC or KServe server's security (offload-serve; offload-run's receiver ranks).
  std::string tls_cert, tls_key, tls_client_ca, tokens_file;
  bool insecure = false;
  std::string metrics;  // --metrics HOST:PORT: /metrics and the HTTP health endpoints (empty: none)
  std::shared_ptr<offload::client_tokens> tokens;  // read from tokens_file by finish_receiver_options
  // A gRPC or KServe client's (offload-run's transmitters).
  std::string tls_ca, tls_client_cert, tls_client_key, token_file;
  std::string token;                    // read from token_file by finish_options
  std::vector<std::string> connect_to;  // grpc: --connect HOST:PORT,...; every rank transmits to them
  bool serve = false;                   // receiver service (service.hpp)
  bool connect = false;                 // transmitter job of a service
  bool stop = false;                    // ask a service to stop
  std::string port_file;
  std::string service_name;
  double connect_timeout_s = 60;  // how long --connect/--stop wait for the service to appear
  int remote_receivers = 0;       // set on connecting: the service's receiver ranks
  bool service_mode() const { return serve || connect || stop; }
  /// The gRPC carrier: our own protocol (grpc) or KServe v2's (kserve).
  bool grpc() const { return transport == "grpc" || transport == "kserve"; }
  bool kserve() const { return transport == "kserve"; }
  bool emulated() const {
    return inject_latency_ms > 0 || inject_jitter_ms > 0 || inject_bandwidth_gbit > 0 || site_link_gbit > 0;
  }
};

/// The built-in kernels and every --plugin's. Throws offload::plugin_error (exit 2).
kernel_registry available_kernels(const options& o);
/// The kernels this rank offers: `available` restricted to --kernel-set. Throws
/// std::invalid_argument naming an unknown kernel (exit 2).
kernel_registry kernel_set(const options& o, const kernel_registry& available);

/// The emulated link of the --inject-* flags (or --distance).
link_emulation emulation(const options& o);
/// The wire limits both roles enforce (--max-message-bytes, --max-products, --max-name-length).
wire_limits limits(const options& o);
/// The receiver and transmitter settings the flags give (communicator: the runtime's).
receiver_config receiver_settings(const options& o);
/// a + b: every counter, the per-kernel counters, the busy time (several receivers of one process).
receiver_stats stats_plus(receiver_stats a, const receiver_stats& b);
/// One line per kernel called, as /metrics has them: "model NAME version V: success N, failure
/// N, inferences N, executions N", then "unauthenticated N" (the exit summaries print these).
std::vector<std::string> kernel_lines(const receiver_stats& s);
transmitter_config transmitter_settings(const options& o);
/// The transport a receiver (transmitter) of these flags uses: `link`, behind the emulated
/// distance (--inject-*, --distance) and the receiver's site link (--site-link-gbit) when the
/// flags ask for them (offload/emulation.hpp).
transport receiver_link(const options& o, transport link);
transport transmitter_link(const options& o, transport link);

/// The distance presets: name and emulated one-way latency in ms (half the round trip).
const std::vector<std::pair<std::string, double>>& distance_presets();

/// A value as offload-run's report writes it (JSON config, CSV).
using report_json = nlohmann::ordered_json;

/// One flag, as data: its name (the one place it is spelled); the setting it feeds (the
/// library's config field, or the run's own `options` field); its name in offload-run's report
/// (the JSON config; the CSV too where the summary row has it), empty when the report does not
/// echo it as is; how it is registered (help, checks); and the value the report shows for it
/// (null when `report` is empty).
struct flag_row {
  std::string_view flag;
  std::string_view setting;
  std::string_view report;
  void (*add)(CLI::App& app, options& o, const std::string& flag);  ///< registers `flag`
  report_json (*value)(const options& o);
};
/// The flags by role, each in the order --help lists them: a receiver's (offload-serve has
/// these only; offload-run's receiver ranks too) and the run's (transmitters, the event loop,
/// the emulated distance, the service).
const std::vector<flag_row>& receiver_flags();
const std::vector<flag_row>& run_flags();
/// The report's value of the setting named `name` (flag_row::report); std::out_of_range naming
/// it when no row has that name.
report_json report_value(const options& o, std::string_view name);

/// The TLS and token settings of a server (--tls-cert, --tls-key, --tls-client-ca, --tokens,
/// --insecure) and of a client (--tls-ca, --tls-client-cert, --tls-client-key, --token-file).
offload::server_security server_security_of(const options& o);
/// The gRPC receiver settings of `o` listening on `address`.
offload::grpc_listen grpc_listen_of(const options& o, const std::string& address);
offload::client_security client_security_of(const options& o);

/// Registers every flag of `o` on `app`: receiver_flags(), then run_flags().
void add_options(CLI::App& app, options& o);
/// Registers the flags that configure a receiver (offload-serve has these only).
void add_receiver_options(CLI::App& app, options& o);
/// "host:port" with a port in 1..65535 (0 too when `any_port`), else std::invalid_argument naming `flag`.
void check_address(const std::string& flag, const std::string& address, bool any_port);
/// Sets --spin-us/--yield-us from --wait-policy and reads --profile; throws CLI::ValidationError
/// (part of finish_options; offload-serve calls it alone).
void finish_receiver_options(const CLI::App& app, options& o);
/// Resolves defaults that depend on other flags (after parsing); throws CLI::ValidationError.
void finish_options(const CLI::App& app, options& o);
/// Checks the flags against the workload `w` and sets what depends on it: the credits, unless
/// given (events in flight x requests per event, at least 8, so that a transmitter never waits
/// for a credit its receivers could give). Throws std::invalid_argument: --cpu-work emulated
/// with a module that computes its cost (not a model), or --backend emulated with a module
/// whose model the profile lacks.
void check_run(options& o, const workload& w);

}  // namespace offload::app
