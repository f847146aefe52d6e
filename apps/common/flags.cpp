// offload-run's and offload-serve's flags as data (options.hpp): one table per role, each row
// the flag, the setting it feeds, its report name, its registration and its report value; and
// what walks them (registration, the report's values).
#include "options.hpp"

#include "logging.hpp"
#include "workload.hpp"

#include <string>
#include <vector>

namespace offload::app {

const std::vector<flag_row>& receiver_flags() {
  static const std::vector<flag_row> rows = {
      {"--grpc-threads", "grpc_listen::threads", "",
       [](CLI::App& app, options& o, const std::string& flag) {
         app.add_option(flag, o.grpc_threads, "grpc: completion-queue threads of each receiver")
             ->check(CLI::Range(1, 64));
       },
       nullptr},
      {"--grpc-memory", "grpc_listen::memory_bytes", "",
       [](CLI::App& app, options& o, const std::string& flag) {
         app.add_option(
                flag, o.grpc_memory,
                "grpc: most bytes gRPC may hold for a receiver (messages being received, connection buffers); a "
                "stream that would take more is reset; 0: no bound (docs/design.md, what a service can cost)")
             ->check(CLI::Range(std::size_t{0}, std::size_t{1} << 50));
       },
       nullptr},
      {"--hello-timeout-ms", "grpc_listen::hello_timeout", "",
       [](CLI::App& app, options& o, const std::string& flag) {
         app.add_option(flag, o.hello_timeout_ms,
                        "grpc: a stream that sends nothing this long after opening is cut off; 0: never")
             ->check(CLI::Range(0u, 86400000u));
       },
       nullptr},
      {"--write-timeout-ms", "grpc_listen::write_timeout", "",
       [](CLI::App& app, options& o, const std::string& flag) {
         app.add_option(flag, o.write_timeout_ms,
                        "grpc: a stream whose reply waits this long for its client to read it is cut off; 0: never")
             ->check(CLI::Range(0u, 86400000u));
       },
       nullptr},
      {"--max-streams-per-address", "grpc_listen::max_streams_per_address", "",
       [](CLI::App& app, options& o, const std::string& flag) {
         app.add_option(flag, o.max_streams_per_address,
                        "grpc: streams open at once from one client address (its IP); more are refused "
                        "(RESOURCE_EXHAUSTED); 0: no bound")
             ->check(CLI::Range(std::size_t{0}, std::size_t{1} << 20));
       },
       nullptr},
      {"--tls-cert", "server_security::tls_cert", "",
       [](CLI::App& app, options& o, const std::string& flag) {
         app.add_option(flag, o.tls_cert,
                        "grpc, kserve: serve TLS with this certificate (PEM; with --tls-key); docs/reliability.md, "
                        "running a service")
             ->check(CLI::ExistingFile);
       },
       nullptr},
      {"--tls-key", "server_security::tls_key", "",
       [](CLI::App& app, options& o, const std::string& flag) {
         app.add_option(flag, o.tls_key, "grpc, kserve: the private key of --tls-cert (PEM)")->check(CLI::ExistingFile);
       },
       nullptr},
      {"--tls-client-ca", "server_security::tls_client_ca", "",
       [](CLI::App& app, options& o, const std::string& flag) {
         app.add_option(flag, o.tls_client_ca,
                        "grpc, kserve: mutual TLS: clients must present a certificate signed by this CA (PEM)")
             ->check(CLI::ExistingFile);
       },
       nullptr},
      {"--tokens", "server_security::tokens", "",
       [](CLI::App& app, options& o, const std::string& flag) {
         app.add_option(flag, o.tokens_file,
                        "grpc, kserve: clients must send 'authorization: Bearer TOKEN' with a token of this file, one "
                        "client per line: NAME TOKEN [max_inflight=N] [max_work=FLOPS] [max_priority=P]; re-read at "
                        "SIGHUP (offload-serve)")
             ->check(CLI::ExistingFile);
       },
       nullptr},
      {"--insecure", "server_security::insecure", "",
       [](CLI::App& app, options& o, const std::string& flag) {
         app.add_flag(flag, o.insecure,
                      "grpc, kserve: allow plaintext on an address other than loopback (anyone who can reach it can "
                      "read and send requests)");
       },
       nullptr},
      {"--metrics", "metrics_server", "",
       [](CLI::App& app, options& o, const std::string& flag) {
         app.add_option(flag, o.metrics,
                        "HOST:PORT to serve HTTP on: /metrics (Prometheus text, Triton's nv_inference_* names per "
                        "model and ours) and KServe v2's /v2/health/live and /v2/health/ready; port 0: any free one");
       },
       nullptr},
      {"--credits", "receiver_config::credits, transmitter_config::credits", "credits",
       [](CLI::App& app, options& o, const std::string& flag) {
         app.add_option(
                flag, o.credits,
                "requests outstanding per transmitter at each receiver; offload-run's default: events in flight x "
                "requests per event, at least 8 (what a run needs not to wait for credits); offload-serve's: 8")
             ->check(CLI::Range(1, 1 << 16));
       },
       [](const options& o) -> report_json { return o.credits; }},
      {"--receiver-threads", "receiver_config::threads", "receiver_threads",
       [](CLI::App& app, options& o, const std::string& flag) {
         app.add_option(flag, o.receiver_threads, "kernel threads per receiver")->check(CLI::Range(1, 1024));
       },
       [](const options& o) -> report_json { return o.receiver_threads; }},
      {"--max-work", "receiver_config::max_work", "",
       [](CLI::App& app, options& o, const std::string& flag) {
         app.add_option(flag, o.max_work,
                        "largest work one request may declare, in floating-point operations (a kernel's cost(); "
                        "synthetic: 2 x elements x iterations); larger ones are refused (too_large); 0: no limit")
             ->check(CLI::Range(0.0, 1e30));
       },
       nullptr},
      {"--backend", "receiver_config::backend (emulated: custom_backend)", "backend",
       [](CLI::App& app, options& o, const std::string& flag) {
         app.add_option(
                flag, o.backend,
                "receiver backend; auto: cuda where a GPU is usable, else cpu (saying why); emulated: the device of "
                "--profile, EMULATED (each batch waits its profiled time; docs/emulated-device.md)")
             ->check(CLI::IsMember({"auto", "cpu", "cuda", "emulated"}));
       },
       [](const options& o) -> report_json { return o.backend; }},
      {"--profile", "emulated_backend(device_profile)", "profile",
       [](CLI::App& app, options& o, const std::string& flag) {
         app.add_option(flag, o.profile,
                        "device profile of --backend emulated: a name (profiles/NAME.json: t4, t4-trt) or a file");
       },
       [](const options& o) -> report_json { return o.profile_data.path; }},
      {"--workload", "options::workload", "",
       [](CLI::App& app, options& o, const std::string& flag) {
         app.add_option(flag, o.workload,
                        "what an event does: single (one request of --kernel), or a workload file by name "
                        "(workloads/NAME.json: miniaod) or path; receivers need it for its models")
             ->check([](const std::string& name) {
               if (name == "single") return std::string();
               try {
                 find_data_file("workloads", name);
                 return std::string();
               } catch (const std::invalid_argument& e) {
                 if (name.find('/') != std::string::npos) return std::string(e.what());
                 std::string known;
                 for (const auto& n : workload_names()) known += (known.empty() ? "" : ", ") + n;
                 return "unknown workload '" + name + "' (known: " + known + "; or give a file path)";
               }
             });
       },
       nullptr},
      {"--plugin", "load_plugin (kernel_registry)", "",
       [](CLI::App& app, options& o, const std::string& flag) {
         app.add_option(flag, o.plugins,
                        "load kernels from this shared library (repeatable; docs/writing-kernels.md); transmitters and "
                        "receivers must load the same ones");
       },
       nullptr},
      {"--model-repository", "model_repository (models.hpp)", "",
       [](CLI::App& app, options& o, const std::string& flag) {
         app.add_option(flag, o.model_repository,
                        "a Triton model repository (DIR/NAME/config.pbtxt, DIR/NAME/VERSION/model.pt): each model a "
                        "kernel, run with libtorch (docs/models.md); transmitters load it for the local fallback")
             ->check(CLI::ExistingDirectory);
       },
       nullptr},
      {"--kernel-set", "kernel_registry::subset", "",
       [](CLI::App& app, options& o, const std::string& flag) {
         app.add_option(flag, o.kernel_set,
                        "kernels this rank offers (default: every built-in and plugin kernel); ranks must agree")
             ->delimiter(',');
       },
       nullptr},
      {"--max-message-bytes", "wire_limits::max_message_bytes", "max_message_bytes",
       [](CLI::App& app, options& o, const std::string& flag) {
         app.add_option(flag, o.max_message_bytes, "largest message sent or accepted")
             ->check(CLI::Range(std::uint64_t{4096}, std::uint64_t{2147483647}));
       },
       [](const options& o) -> report_json { return o.max_message_bytes; }},
      {"--max-products", "wire_limits::max_products", "max_products",
       [](CLI::App& app, options& o, const std::string& flag) {
         app.add_option(flag, o.max_products, "most products per message sent or accepted")
             ->check(CLI::Range(1, 1 << 20));
       },
       [](const options& o) -> report_json { return o.max_products; }},
      {"--max-name-length", "wire_limits::max_name_length", "max_name_length",
       [](CLI::App& app, options& o, const std::string& flag) {
         app.add_option(flag, o.max_name_length, "longest product name sent or accepted")->check(CLI::Range(1, 65535));
       },
       [](const options& o) -> report_json { return o.max_name_length; }},
      {"--idle-timeout-ms", "receiver_config::idle_timeout", "idle_timeout_ms",
       [](CLI::App& app, options& o, const std::string& flag) {
         app.add_option(flag, o.idle_timeout_ms,
                        "receivers drop a transmitter silent this long, reclaiming its credits (transmitters send "
                        "keepalives at a quarter of it); 0: never")
             ->check(CLI::Range(0.0, 1e9));
       },
       [](const options& o) -> report_json { return o.idle_timeout_ms; }},
      {"--device", "receiver_config::device", "",
       [](CLI::App& app, options& o, const std::string& flag) {
         app.add_option(flag, o.device, "CUDA device of the receivers; -1: local rank modulo the visible devices")
             ->check(CLI::Range(-1, 1024));
       },
       nullptr},
      {"--max-batch", "receiver_config::max_batch", "max_batch",
       [](CLI::App& app, options& o, const std::string& flag) {
         app.add_option(
                flag, o.max_batch,
                "receivers run up to this many requests of one kernel together (dynamic batching as Triton's: a "
                "batch grows while every instance of the kernel is busy); 0: no limit")
             ->check(CLI::Range(0, int(max_batch_limit)));
       },
       [](const options& o) -> report_json { return o.max_batch; }},
      {"--max-queue", "receiver_config::max_queue", "max_queue",
       [](CLI::App& app, options& o, const std::string& flag) {
         app.add_option(
                flag, o.max_queue,
                "receivers answer 'busy' (not queued: the transmitter tries another receiver, else its CPU) to a "
                "request for a kernel that has this many waiting; 0: no limit")
             ->check(CLI::Range(0, 1 << 30));
       },
       [](const options& o) -> report_json { return o.max_queue; }},
      {"--max-threads", "receiver_config::max_threads", "max_threads",
       [](CLI::App& app, options& o, const std::string& flag) {
         app.add_option(
                flag, o.max_threads,
                "receivers run at most this many batches at once, all kernels together (each kernel also at most "
                "its instances, --receiver-threads); 0: no limit")
             ->check(CLI::Range(0, 1 << 16));
       },
       [](const options& o) -> report_json { return o.max_threads; }},
      {"--kernel-instances", "receiver_config::kernel_instances", "kernel_instances",
       [](CLI::App& app, options& o, const std::string& flag) {
         app.add_option(flag, o.kernel_instances,
                        "NAME=N,...: batches of that kernel a receiver runs at once (default --receiver-threads)")
             ->delimiter(',');
       },
       [](const options& o) -> report_json { return o.kernel_instances; }},
      {"--kernel-priority", "receiver_config::kernel_priority", "kernel_priority",
       [](CLI::App& app, options& o, const std::string& flag) {
         app.add_option(flag, o.kernel_priority,
                        "NAME=P,...: the priority at the receivers of that kernel's requests that give none (1, the "
                        "default, is the highest)")
             ->delimiter(',');
       },
       [](const options& o) -> report_json { return o.kernel_priority; }},
      {"--kernel-max-queue", "receiver_config::kernel_max_queue", "kernel_max_queue",
       [](CLI::App& app, options& o, const std::string& flag) {
         app.add_option(flag, o.kernel_max_queue, "NAME=N,...: --max-queue for that kernel")->delimiter(',');
       },
       [](const options& o) -> report_json { return o.kernel_max_queue; }},
      {"--preferred-batch", "receiver_config::preferred_batch", "preferred_batch",
       [](CLI::App& app, options& o, const std::string& flag) {
         app.add_option(
                flag, o.preferred_batch,
                "batch sizes (requests) sent as soon as they can be formed and a kernel thread is free, the largest "
                "first; others wait up to --max-wait-us")
             ->delimiter(',')
             ->check(CLI::Range(1, int(max_batch_limit)));
       },
       [](const options& o) -> report_json { return o.preferred_batch; }},
      {"--site-link-gbit", "emulated_link(site_link_bps)", "site_link_gbit",
       [](CLI::App& app, options& o, const std::string& flag) {
         app.add_option(flag, o.site_link_gbit,
                        "emulated shared link into each receiver's site, Gbit/s: every request, from any transmitter, "
                        "crosses it one after another (reported as emulated); 0: none")
             ->check(CLI::Range(0.0, 1e6));
       },
       [](const options& o) -> report_json { return o.site_link_gbit; }},
      {"--max-wait-us", "receiver_config::max_wait", "max_wait_us",
       [](CLI::App& app, options& o, const std::string& flag) {
         app.add_option(flag, o.max_wait_us,
                        "how long a receiver holds a batch open for more requests when no preferred size can be formed")
             ->check(CLI::Range(0.0, 1e7));
       },
       [](const options& o) -> report_json { return o.max_wait_us; }},
      {"--log-level", "options::log_level", "",
       [](CLI::App& app, options& o, const std::string& /*flag: logging.hpp spells it*/) {
         add_log_level(app, o.log_level);
       },
       nullptr},
      {"--wait-policy", "progress_options", "wait_policy",
       [](CLI::App& app, options& o, const std::string& flag) {
         app.add_option(
                flag, o.wait_policy,
                "how idle progress threads wait: adaptive (learns the gap to the next work: at most twice "
                "--idle-sleep-us, it polls twice that gap, spinning within --spin-us or else yielding up to "
                "--yield-us; longer, it sleeps at once), spin, yield, or block (sleep at once; local work wakes "
                "them, incoming messages are seen within --idle-sleep-us)")
             ->check(CLI::IsMember({"adaptive", "spin", "yield", "block"}));
       },
       [](const options& o) -> report_json { return o.wait_policy; }},
      {"--spin-us", "progress_options::spin", "spin_us",
       [](CLI::App& app, options& o, const std::string& flag) {
         app.add_option(flag, o.spin_us, "adaptive: an idle progress thread polls without pause at most this long")
             ->check(CLI::Range(0, 10000000));
       },
       [](const options& o) -> report_json { return o.spin_us; }},
      {"--yield-us", "progress_options::yield", "yield_us",
       [](CLI::App& app, options& o, const std::string& flag) {
         app.add_option(flag, o.yield_us,
                        "adaptive: then yields between polls at most until this long after its last work")
             ->check(CLI::Range(0, 10000000));
       },
       [](const options& o) -> report_json { return o.yield_us; }},
      {"--idle-sleep-us", "progress_options::max_sleep", "idle_sleep_us",
       [](CLI::App& app, options& o, const std::string& flag) {
         app.add_option(
                flag, o.idle_sleep_us,
                "longest sleep of an idle progress thread: the latency an idle rank may add, against its CPU use")
             ->check(CLI::Range(1, 100000));
       },
       [](const options& o) -> report_json { return o.idle_sleep_us; }},
  };
  return rows;
}

const std::vector<flag_row>& run_flags() {
  static const std::vector<flag_row> rows = {
      {"--transport", "options::transport", "transport",
       [](CLI::App& app, options& o, const std::string& flag) {
         app.add_option(flag, o.transport,
                        "the data path between transmitters and receivers: mpi, or grpc (receiver ranks listen on "
                        "--listen; or every rank transmits to --connect HOST:PORT,... of offload-serve, without mpirun "
                        "too), or kserve (every rank transmits to the KServe v2 servers of --connect HOST:PORT,...: "
                        "offload-serve --kserve, NVIDIA Triton)")
             ->check(CLI::IsMember({"mpi", "grpc", "kserve"}));
       },
       [](const options& o) -> report_json { return o.transport; }},
      {"--listen", "grpc_listen::address", "",
       [](CLI::App& app, options& o, const std::string& flag) {
         app.add_option(
             flag, o.listen,
             "grpc: HOST:PORT receiver ranks listen on (port 0: any free one); transmitters are told HOST, or "
             "this rank's host name when HOST is 0.0.0.0. Default: 127.0.0.1:0 when the whole job is on one host, "
             "else 0.0.0.0:0, which needs --tls-cert/--tls-key or --insecure");
       },
       nullptr},
      {"--tls-ca", "client_security::tls_ca", "",
       [](CLI::App& app, options& o, const std::string& flag) {
         app.add_option(flag, o.tls_ca,
                        "grpc, kserve: reach --connect servers over TLS, trusting this CA (PEM)")
             ->check(CLI::ExistingFile);
       },
       nullptr},
      {"--tls-client-cert", "client_security::tls_cert", "",
       [](CLI::App& app, options& o, const std::string& flag) {
         app.add_option(flag, o.tls_client_cert, "grpc, kserve: this client's certificate for mutual TLS (PEM)")
             ->check(CLI::ExistingFile);
       },
       nullptr},
      {"--tls-client-key", "client_security::tls_key", "",
       [](CLI::App& app, options& o, const std::string& flag) {
         app.add_option(flag, o.tls_client_key, "grpc, kserve: the private key of --tls-client-cert (PEM)")
             ->check(CLI::ExistingFile);
       },
       nullptr},
      {"--token-file", "client_security::token", "",
       [](CLI::App& app, options& o, const std::string& flag) {
         app.add_option(flag, o.token_file,
                        "grpc, kserve: send the token on this file's first line as 'authorization: Bearer TOKEN' "
                        "(a file, so that the token is not in the process list)")
             ->check(CLI::ExistingFile);
       },
       nullptr},
      {"--kserve", "kserve_listen::address", "",
       [](CLI::App& app, options& o, const std::string& flag) {
         app.add_option(flag, o.kserve_listen,
                        "HOST:PORT on which receiver ranks also serve KServe v2 clients (Triton's), beside this job's "
                        "transmitters: one receiver, one scheduler for both; their sessions are served while the job "
                        "runs, not waited for (one receiver rank: a port per rank would need PORT 0)");
       },
       nullptr},
      {"--cpu-work", "options::cpu_work", "cpu_work",
       [](CLI::App& app, options& o, const std::string& flag) {
         app.add_option(flag, o.cpu_work,
                        "client CPU work (before/after each event, models run locally or as fallbacks): real computes; "
                        "emulated holds the thread for the same time without computing, so that one machine can host "
                        "hundreds of client threads (labelled EMULATED); the library's own work stays real")
             ->check(CLI::IsMember({"real", "emulated"}));
       },
       [](const options& o) -> report_json {
         return o.cpu_work == "emulated" ? "EMULATED (held, not computed)" : "real";
       }},
      {"--mode", "options::mode", "mode",
       [](CLI::App& app, options& o, const std::string& flag) {
         app.add_option(flag, o.mode,
                        "remote: modules go to receivers; local: they run inline on the event's thread")
             ->check(CLI::IsMember({"remote", "local"}));
       },
       [](const options& o) -> report_json { return o.mode; }},
      {"--time-scale", "options::time_scale", "time_scale",
       [](CLI::App& app, options& o, const std::string& flag) {
         app.add_option(
                flag, o.time_scale,
                "multiplies every CPU cost given in ms (CPU work, a workload's models) and the emulated device's times")
             ->check(CLI::Range(1e-6, 1e3));
       },
       [](const options& o) -> report_json { return o.time_scale; }},
      {"--cpu-before-ms", "options::cpu_before_ms", "",
       [](CLI::App& app, options& o, const std::string& flag) {
         app.add_option(flag, o.cpu_before_ms,
                        "CPU work per event before its modules (default: the workload's)")
             ->check(CLI::Range(0.0, 1e6));
       },
       nullptr},
      {"--cpu-after-ms", "options::cpu_after_ms", "",
       [](CLI::App& app, options& o, const std::string& flag) {
         app.add_option(flag, o.cpu_after_ms,
                        "CPU work per event after its modules (default: the workload's)")
             ->check(CLI::Range(0.0, 1e6));
       },
       nullptr},
      {"--ns-per-iteration", "options::ns_per_iteration", "",
       [](CLI::App& app, options& o, const std::string& flag) {
         app.add_option(
                flag, o.ns_per_iteration,
                "CPU ns of one step of the CPU work loop; 0: measured at start-up by the first transmitter, which "
                "then also measures each module. Giving it pins every count")
             ->check(CLI::Range(0.0, 1e6));
       },
       nullptr},
      {"--module-work", "options::module_work", "",
       [](CLI::App& app, options& o, const std::string& flag) {
         app.add_option(flag, o.module_work,
                        "iterations per element of each module, in order (as a run's JSON config reports them); with "
                        "--ns-per-iteration it repeats that run's work exactly")
             ->delimiter(',')
             ->check(CLI::Range(std::uint64_t{1}, std::uint64_t{1'000'000'000}));
       },
       nullptr},
      {"--receivers", "options::receivers", "receivers",
       [](CLI::App& app, options& o, const std::string& flag) {
         app.add_option(
                flag, o.receivers,
                "receiver ranks (ranks 0..R-1); default 1 in remote mode, 0 in local mode; 0 in remote mode runs "
                "every request as a local fallback")
             ->check(CLI::Range(-1, 1 << 20));
       },
       [](const options& o) -> report_json { return o.receivers + o.remote_receivers; }},
      {"--kernel", "options::kernel", "",
       [](CLI::App& app, options& o, const std::string& flag) { app.add_option(flag, o.kernel, "kernel of the single workload"); },
       nullptr},
      {"--events", "options::events", "events_per_transmitter",
       [](CLI::App& app, options& o, const std::string& flag) {
         app.add_option(flag, o.events, "events per transmitter rank")
             ->check(CLI::Range(std::uint64_t{1}, std::uint64_t{1} << 40));
       },
       [](const options& o) -> report_json { return o.events; }},
      {"--warmup-events", "options::warmup_events", "warmup_events",
       [](CLI::App& app, options& o, const std::string& flag) {
         app.add_option(flag, o.warmup_events,
                        "events per transmitter run before the measured ones and left out of every figure (receivers' "
                        "counters include them)")
             ->check(CLI::Range(std::uint64_t{0}, std::uint64_t{1} << 40));
       },
       [](const options& o) -> report_json { return o.warmup_events; }},
      {"--threads", "options::threads", "threads",
       [](CLI::App& app, options& o, const std::string& flag) {
         app.add_option(flag, o.threads, "worker threads per transmitter rank")->check(CLI::Range(1, 1024));
       },
       [](const options& o) -> report_json { return o.threads; }},
      {"--fallback-threads", "transmitter_config::fallback_threads", "fallback_threads",
       [](CLI::App& app, options& o, const std::string& flag) {
         app.add_option(flag, o.fallback_threads,
                        "threads per transmitter rank that run local fallbacks; 0: as many as --threads")
             ->check(CLI::Range(0, 1024));
       },
       [](const options& o) -> report_json {
         return o.fallback_threads > 0 ? o.fallback_threads : std::size_t(o.threads);
       }},
      {"--inflight", "options::inflight", "inflight",
       [](CLI::App& app, options& o, const std::string& flag) {
         app.add_option(flag, o.inflight, "events in flight per transmitter rank")
             ->check(CLI::Range(1, 1 << 20));
       },
       [](const options& o) -> report_json { return o.inflight; }},
      {"--validate", "options::validate", "validate",
       [](CLI::App& app, options& o, const std::string& flag) {
         app.add_flag(flag, o.validate, "check every remote result against the local CPU implementation");
       },
       [](const options& o) -> report_json { return o.validate; }},
      {"--timeout-ms", "transmitter_config::timeout", "timeout_ms",
       [](CLI::App& app, options& o, const std::string& flag) {
         app.add_option(flag, o.timeout_ms, "per-request timeout before the CPU fallback")
             ->check(CLI::Range(0.001, 1e9));
       },
       [](const options& o) -> report_json { return o.timeout_ms; }},
      {"--handshake-timeout-ms", "transmitter_config::handshake_timeout", "handshake_timeout_ms",
       [](CLI::App& app, options& o, const std::string& flag) {
         app.add_option(flag, o.handshake_timeout_ms,
                        "how long a transmitter waits at start for its receivers to answer (those that have not by "
                        "then are used once they do), and at the end for their goodbyes")
             ->check(CLI::Range(1.0, 1e9))
             ->capture_default_str();
       },
       [](const options& o) -> report_json { return o.handshake_timeout_ms; }},
      {"--require-receivers", "transmitter_config::require_receivers", "require_receivers",
       [](CLI::App& app, options& o, const std::string& flag) {
         app.add_flag(flag, o.require_receivers,
                      "a transmitter fails at start (status FAILED) unless every receiver answers within "
                      "--handshake-timeout-ms and serves each of its kernels; by default it starts anyway, falls back "
                      "to the CPU and uses receivers once they answer");
       },
       [](const options& o) -> report_json { return o.require_receivers; }},
      {"--json", "options::json", "",
       [](CLI::App& app, options& o, const std::string& flag) {
         app.add_option(flag, o.json, "write configuration, results and metadata as JSON to this file (rank 0)");
       },
       nullptr},
      {"--csv", "options::csv", "",
       [](CLI::App& app, options& o, const std::string& flag) {
         app.add_option(flag, o.csv,
                        "append one row for this run to this CSV file, with a header when new (rank 0)");
       },
       nullptr},
      {"--calibrate", "options::calibration_file", "",
       [](CLI::App& app, options& o, const std::string& flag) {
         app.add_option(
             flag, o.calibration_file,
             "write the library's costs this run measured (stages by module, batch overhead, progress-thread cores) "
             "to this file, for offload-sim --calibration (rank 0; docs/planning.md)");
       },
       nullptr},
      {"--quiet", "options::quiet", "",
       [](CLI::App& app, options& o, const std::string& flag) { app.add_flag(flag, o.quiet, "no progress line on stderr"); }, nullptr},
      {"--bind", "options::bind", "bind",
       [](CLI::App& app, options& o, const std::string& flag) {
         app.add_flag(flag, o.bind, "bind progress threads and workers to cores with hwloc, and report it");
       },
       [](const options& o) -> report_json { return o.bind; }},
      {"--size", "options::size", "",
       [](CLI::App& app, options& o, const std::string& flag) {
         app.add_option(
             flag, o.size,
             "single workload input size: mlp jets (256), clustering grid side (64), synthetic elements (4096), "
             "echo bytes (65536); 0 picks the kernel's default");
       },
       nullptr},
      {"--work", "options::work", "",
       [](CLI::App& app, options& o, const std::string& flag) {
         app.add_option(flag, o.work, "single workload, synthetic: iterations per element");
       },
       nullptr},
      {"--seed", "options::seed", "seed",
       [](CLI::App& app, options& o, const std::string& flag) { app.add_option(flag, o.seed, "seed of the generated events"); },
       [](const options& o) -> report_json { return o.seed; }},
      {"--priority", "submit_options::priority", "priority",
       [](CLI::App& app, options& o, const std::string& flag) {
         app.add_option(
                flag, o.priority,
                "every request's priority at the receivers: 1 is the highest; 0: the receiver's default for the kernel")
             ->check(CLI::Range(0u, UINT32_MAX));
       },
       [](const options& o) -> report_json { return o.priority; }},
      {"--no-deadlines", "transmitter_config::send_deadlines", "deadlines",
       [](CLI::App& app, options& o, const std::string& flag) {
         app.add_flag(flag, o.no_deadlines,
                      "requests do not tell receivers how long they are waited for (receivers then run requests whose "
                      "events fell back already)");
       },
       [](const options& o) -> report_json { return !o.no_deadlines; }},
      {"--routing", "transmitter_config::policy", "routing",
       [](CLI::App& app, options& o, const std::string& flag) {
         app.add_option(flag, o.routing, "receiver choice")
             ->check(CLI::IsMember({"round_robin", "least_outstanding"}));
       },
       [](const options& o) -> report_json { return o.routing; }},
      {"--blocking-receive-below", "mpi_link::blocking_receive_below", "blocking_receive_below",
       [](CLI::App& app, options& o, const std::string& flag) {
         app.add_option(
                flag, o.blocking_receive_below,
                "messages smaller than this are received with a blocking MPI_Mrecv, larger ones without blocking; "
                "over long TCP links use the TCP eager limit (65536) or 0")
             ->check(CLI::Range(std::uint64_t{0}, std::uint64_t{1} << 31));
       },
       [](const options& o) -> report_json { return o.blocking_receive_below; }},
      {"--parts-from", "mpi_link::parts_from", "parts_from",
       [](CLI::App& app, options& o, const std::string& flag) {
         app.add_option(
                flag, o.parts_from,
                "requests and in-place replies of at least this many bytes go as a head and one MPI message per "
                "payload, from where each lies; smaller ones are copied into one message")
             ->check(CLI::Range(std::uint64_t{0}, std::uint64_t{1} << 40));
       },
       [](const options& o) -> report_json { return o.parts_from; }},
      {"--copy-inputs", "options::copy_inputs", "copy_inputs",
       [](CLI::App& app, options& o, const std::string& flag) {
         app.add_flag(flag, o.copy_inputs,
                      "submit with the copying API (the inputs encoded into one message) instead of sharing them");
       },
       [](const options& o) -> report_json { return o.copy_inputs; }},
      {"--same-inputs", "options::same_inputs", "same_inputs",
       [](CLI::App& app, options& o, const std::string& flag) {
         app.add_flag(flag, o.same_inputs,
                      "every event submits the same inputs, made once per module: takes input generation out of the "
                      "event loop (overhead benchmarks against raw MPI)");
       },
       [](const options& o) -> report_json { return o.same_inputs; }},
      {"--fresh-malloc", "options::fresh_malloc", "fresh_malloc",
       [](CLI::App& app, options& o, const std::string& flag) {
         app.add_flag(flag, o.fresh_malloc,
                      "make each event's inputs in memory from malloc (std::vector), as before the transmitter's "
                      "pool, instead of in pooled memory (transmitter::make_product)");
       },
       [](const options& o) -> report_json { return o.fresh_malloc; }},
      {"--inline-budget-us", "receiver_config::inline_budget", "inline_budget_us",
       [](CLI::App& app, options& o, const std::string& flag) {
         app.add_option(
                flag, o.inline_budget_us,
                "receivers run a cheap kernel's request on the progress thread when its declared cost fits this "
                "budget (0: never)")
             ->check(CLI::Range(0.0, 1e6));
       },
       [](const options& o) -> report_json { return o.inline_budget_us; }},
      {"--tolerance", "options::tolerance", "",
       [](CLI::App& app, options& o, const std::string& flag) {
         app.add_option(flag, o.tolerance, "relative and absolute tolerance of --validate")
             ->check(CLI::NonNegativeNumber);
       },
       nullptr},
      {"--distance", "emulated_link(link_emulation::latency)", "distance",
       [](CLI::App& app, options& o, const std::string& flag) {
         std::vector<std::string> distances;
         for (const auto& [name, ms] : distance_presets()) distances.push_back(name);
         app.add_option(flag, o.distance,
                        "emulated network distance: same-node (nothing added), same-dc (0.1 ms round trip), nearby-dc "
                        "(2 ms), far-dc (25 ms); sets --inject-latency")
             ->check(CLI::IsMember(distances));
       },
       [](const options& o) -> report_json { return o.distance; }},
      {"--inject-latency", "emulated_link(link_emulation::latency)", "inject_latency_ms",
       [](CLI::App& app, options& o, const std::string& flag) {
         app.add_option(flag, o.inject_latency_ms,
                        "emulated one-way delay per message in ms, added in the transport of every rank (reported as "
                        "emulated)")
             ->check(CLI::Range(0.0, 60000.0));
       },
       [](const options& o) -> report_json { return o.inject_latency_ms; }},
      {"--inject-jitter", "emulated_link(link_emulation::jitter)", "inject_jitter_ms",
       [](CLI::App& app, options& o, const std::string& flag) {
         app.add_option(flag, o.inject_jitter_ms,
                        "emulated jitter in ms: each delay varies uniformly by +-this")
             ->check(CLI::Range(0.0, 60000.0));
       },
       [](const options& o) -> report_json { return o.inject_jitter_ms; }},
      {"--inject-bandwidth", "emulated_link(link_emulation::bandwidth_bps)", "inject_bandwidth_gbit",
       [](CLI::App& app, options& o, const std::string& flag) {
         app.add_option(flag, o.inject_bandwidth_gbit,
                        "emulated link bandwidth in Gbit/s per sender and destination; 0: unlimited")
             ->check(CLI::Range(0.0, 1e6));
       },
       [](const options& o) -> report_json { return o.inject_bandwidth_gbit; }},
      {"--serve", "options::serve", "",
       [](CLI::App& app, options& o, const std::string& flag) {
         app.add_flag(
             flag, o.serve,
             "run a receiver service: every rank receives; transmitter jobs --connect to it until one --stop-s it");
       },
       nullptr},
      {"--connect", "options::connect_to", "",
       [](CLI::App& app, options& o, const std::string& flag) {
         // A bare --connect must count: CLI11 2.1 drops a value-less option that captures its default.
         app.option_defaults()->always_capture_default(false);
         app.add_option(flag, o.connect_to,
                        "run this job's events against a receiver service (every rank transmits): with --transport mpi "
                        "the MPI service of --port-file/--service-name (no value), with --transport grpc the "
                        "offload-serve instances at HOST:PORT[,HOST:PORT...]")
             ->expected(0, 1);
         app.option_defaults()->always_capture_default();
       },
       nullptr},
      {"--stop", "options::stop", "",
       [](CLI::App& app, options& o, const std::string& flag) {
         app.add_flag(flag, o.stop, "ask a receiver service to stop once its sessions end");
       },
       nullptr},
      {"--port-file", "options::port_file", "",
       [](CLI::App& app, options& o, const std::string& flag) {
         app.add_option(flag, o.port_file, "service: the file holding its MPI port name (on a shared path)");
       },
       nullptr},
      {"--service-name", "options::service_name", "",
       [](CLI::App& app, options& o, const std::string& flag) {
         app.add_option(flag, o.service_name,
                        "service: its name on the Open MPI name server (every mpirun needs --ompi-server)");
       },
       nullptr},
      {"--connect-timeout", "options::connect_timeout_s", "",
       [](CLI::App& app, options& o, const std::string& flag) {
         app.add_option(flag, o.connect_timeout_s,
                        "--connect/--stop: how long to wait for the service's port file or name to appear (s)")
             ->check(CLI::Range(0.0, 86400.0));
       },
       nullptr},
  };
  return rows;
}

report_json report_value(const options& o, std::string_view name) {
  for (const auto* rows : {&receiver_flags(), &run_flags()})
    for (const auto& r : *rows)
      if (r.report == name && r.value != nullptr) return r.value(o);
  throw std::out_of_range("no flag is reported as '" + std::string(name) + "'");
}

void add_receiver_options(CLI::App& app, options& o) {
  app.option_defaults()->always_capture_default();
  for (const auto& r : receiver_flags()) r.add(app, o, std::string(r.flag));
}

void add_options(CLI::App& app, options& o) {
  add_receiver_options(app, o);
  for (const auto& r : run_flags()) r.add(app, o, std::string(r.flag));
}

}  // namespace offload::app
