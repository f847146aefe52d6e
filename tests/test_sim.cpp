// offload-sim's parts: the event core, the batching server, and the server against queueing
// theory (Inoue, Performance Evaluation 147 (2021) 102183).
#include "apps/common/calibration.hpp"
#include "apps/offload_sim/batching_server.hpp"
#include "apps/offload_sim/plan.hpp"
#include "apps/offload_sim/queueing.hpp"
#include "apps/offload_sim/shared_host.hpp"
#include "apps/offload_sim/system.hpp"

#include <catch2/catch.hpp>

#include <vector>

using namespace offload::sim;

TEST_CASE("the event core runs actions in time order, ties in scheduling order") {
  simulation s;
  std::vector<int> order;
  s.after(2, [&] { order.push_back(3); });
  s.after(1, [&] { order.push_back(1); });
  s.after(1, [&] {
    order.push_back(2);
    s.after(0.5, [&] { order.push_back(4); });  // at 1.5: before the one at 2
  });
  s.run(10);
  CHECK(order == std::vector<int>{1, 2, 4, 3});
  CHECK(s.now() == 2);
  CHECK(s.events_run() == 4);
}

TEST_CASE("the batching server forms batches as Triton's dynamic batcher") {
  simulation s;
  std::vector<std::pair<double, int>> done;  // (time, request)
  batching_server server(s, {1, 4, {2}, 1.0, {}, {}}, [](std::size_t, double items) { return 10.0 + items; });
  // Three requests at t = 0: the idle server takes the preferred 2 at once (ends at 12); the
  // third waits for a free slot, then, no preferred size formable, for max_wait from its arrival
  // (already past at 12): it runs 12..23.
  for (int i = 0; i < 3; ++i) server.submit(0, 1, [&, i](double) { done.push_back({s.now(), i}); });
  // At t = 30, one request alone: it waits max_wait (1 s), then runs 31..42.
  s.after(30, [&] { server.submit(0, 1, [&](double) { done.push_back({s.now(), 3}); }); });
  s.run(100);
  REQUIRE(done.size() == 4);
  CHECK(done[0] == std::pair<double, int>{12, 0});
  CHECK(done[1] == std::pair<double, int>{12, 1});
  CHECK(done[2] == std::pair<double, int>{23, 2});
  CHECK(done[3] == std::pair<double, int>{42, 3});
  CHECK(server.batches() == 3);
  CHECK(server.busy_time() == Approx(12 + 11 + 11));
}

TEST_CASE("the exact mean latency reproduces the paper's figures") {
  const double alpha = 0.1438e-3, tau0 = 1.8874e-3;  // the paper's V100 fit
  CHECK(inoue_exact(0.3 / alpha, alpha, tau0).mean_latency == Approx(4.225e-3).epsilon(1e-3));
  CHECK(inoue_exact(0.5 / alpha, alpha, tau0).mean_latency == Approx(5.902e-3).epsilon(1e-3));
  CHECK(inoue_exact(0.9 / alpha, alpha, tau0).mean_latency == Approx(29.408e-3).epsilon(1e-3));
  for (double load : {0.3, 0.5, 0.9})  // the bound is above, within 0.1% at moderate load
    CHECK(inoue_bound(load / alpha, alpha, tau0) >= inoue_exact(load / alpha, alpha, tau0).mean_latency * (1 - 1e-9));
  CHECK_THROWS_WITH(inoue_exact(1.0 / alpha, alpha, tau0), Catch::Contains("lambda * alpha < 1"));
  CHECK_THROWS_WITH(inoue_exact(1.0, alpha, -1.0), Catch::Contains("tau0 > 0"));
}

TEST_CASE("the simulated batching server matches the exact mean latency at loads 0.1 to 0.9") {
  const double alpha = 0.1438e-3, tau0 = 1.8874e-3;
  for (double load : {0.1, 0.3, 0.5, 0.7, 0.9}) {
    const double lambda = load / alpha;
    const auto exact = inoue_exact(lambda, alpha, tau0);
    const auto sim = simulate_queue(lambda, alpha, tau0, 200000, 7);
    INFO("load " << load << ": exact " << exact.mean_latency * 1e3 << " ms, simulated " << sim.mean_latency * 1e3);
    // Near saturation successive latencies are strongly correlated: 200,000 requests estimate
    // the mean within about 2% there (seeds 1-5 at 0.9: -1.7% .. +0.9%), within 1% below.
    const double tolerance = load >= 0.9 ? 0.025 : 0.01;
    CHECK(sim.mean_latency == Approx(exact.mean_latency).epsilon(tolerance));
    CHECK(sim.mean_batch == Approx(exact.mean_batch).epsilon(tolerance));
  }
}

TEST_CASE("a simulation is deterministic: the same seed gives the same figures, another seed others") {
  const double alpha = 0.1438e-3, tau0 = 1.8874e-3, lambda = 0.5 / alpha;
  const auto a = simulate_queue(lambda, alpha, tau0, 20000, 3);
  const auto b = simulate_queue(lambda, alpha, tau0, 20000, 3);
  const auto c = simulate_queue(lambda, alpha, tau0, 20000, 4);
  CHECK(a.mean_latency == b.mean_latency);
  CHECK(a.mean_batch == b.mean_batch);
  CHECK(a.mean_latency != c.mean_latency);
}

namespace {
offload::sim::system_config small_system() {
  offload::sim::system_config c;
  c.workload = offload::app::make_workload("miniaod", offload::kernel_registry::builtin(), "", 0, 0);
  c.profile = offload::load_device_profile(offload::app::find_data_file("profiles", "t4"));
  c.jobs = 5;
  c.seconds = 30;
  c.warmup = 5;
  c.batching.max_batch = 64;
  return c;
}
}  // namespace

TEST_CASE("the system model: CPU-only throughput is threads over the event's CPU time") {
  auto c = small_system();
  c.offload = false;
  c.seconds = 400;
  c.warmup = 50;
  const auto r = offload::sim::run_system(c);
  CHECK(r.events_per_s_per_job == Approx(4 / 0.9933).epsilon(0.03));  // 4 threads, 993.3 ms per event
  CHECK(r.busy.empty());
}

TEST_CASE("the system model offloads: the gain stays below its ceiling, one T4 is lightly busy") {
  auto c = small_system();
  c.seconds = 400;
  c.warmup = 50;
  const auto r = offload::sim::run_system(c);
  CHECK(r.events_per_s_per_job > 4 / 0.9933);
  CHECK(r.events_per_s_per_job < 4 / 0.9052 * 1.03);  // the other CPU work bounds it
  REQUIRE(r.busy.count("shared") == 1);
  CHECK(r.busy.at("shared") > 0);
  CHECK(r.busy.at("shared") < 0.5);
  // Bytes into the GPU site: events/s x 1.553 MB (the inputs' mean), within the draws' spread.
  CHECK(r.bytes_in_per_s == Approx(r.events_per_s_per_job * c.jobs * 1.553e6).epsilon(0.1));
}

TEST_CASE("the system model is deterministic and refuses bad configurations") {
  auto c = small_system();
  const auto a = offload::sim::run_system(c), b = offload::sim::run_system(c);
  CHECK(a.events == b.events);
  CHECK(a.mean_round_trip == b.mean_round_trip);
  c.seed = 2;
  CHECK(offload::sim::run_system(c).mean_round_trip != a.mean_round_trip);
  auto bad = small_system();
  bad.gpus["pn_ak4"] = 0;
  CHECK_THROWS_WITH(offload::sim::run_system(bad), Catch::Contains("model 'pn_ak4' has no GPU"));
  bad = small_system();
  bad.rtt = -1;
  CHECK_THROWS_WITH(offload::sim::run_system(bad), Catch::Contains("must be >= 0"));
  bad = small_system();
  bad.jobs = 0;
  CHECK_THROWS_WITH(offload::sim::run_system(bad), Catch::Contains("jobs, threads and inflight must be >= 1"));
  bad = small_system();
  bad.timeout = -0.1;
  CHECK_THROWS_WITH(offload::sim::run_system(bad), Catch::Contains("timeout and host cores must be >= 0"));
  bad = small_system();
  bad.costs.out_fixed_s = -1;
  CHECK_THROWS_WITH(offload::sim::run_system(bad), Catch::Contains("library costs must be >= 0"));
  bad = small_system();
  bad.profile.models.pop_back();  // (the profile lacks a model the workload has)
  CHECK_THROWS_WITH(offload::sim::run_system(bad), Catch::Contains("has no model"));
}

TEST_CASE("every event and request completes exactly once, remotely or by its fallback") {
  auto c = small_system();
  c.seconds = 60;
  SECTION("no timeout: all remote") {
    const auto r = offload::sim::run_system(c);
    CHECK(r.events_started == r.events_finished + r.events_open);
    CHECK(r.events_open <= std::uint64_t(c.jobs * c.inflight));
    CHECK(r.requests == r.remote + r.fallbacks + r.requests_open);
    CHECK(r.fallbacks == 0);
    CHECK(r.finished_twice == 0);
    CHECK(r.remote > 1000);
  }
  SECTION("a timeout shorter than the round trip: requests fall back, late replies are dropped") {
    c.rtt = 0.05;
    c.timeout = 0.03;  // every request takes at least the 50 ms round trip
    const auto r = offload::sim::run_system(c);
    CHECK(r.remote == 0);
    CHECK(r.fallbacks > 1000);
    CHECK(r.requests == r.remote + r.fallbacks + r.requests_open);
    CHECK(r.late_replies + c.jobs * c.inflight * 4 >= r.fallbacks);  // every fallen-back request's reply comes late
    CHECK(r.events_started == r.events_finished + r.events_open);
    CHECK(r.finished_twice == 0);
    // The events still complete, at about the CPU-only rate (the fallbacks do the modules' work).
    auto local = small_system();
    local.seconds = 60;
    local.offload = false;
    CHECK(r.events_per_s_per_job == Approx(offload::sim::run_system(local).events_per_s_per_job).epsilon(0.05));
  }
  SECTION("a timeout that some requests pass: both kinds, still once each") {
    c.jobs = 40;
    c.timeout = 0.02;
    const auto r = offload::sim::run_system(c);
    CHECK(r.remote > 0);
    CHECK(r.fallbacks > 0);
    CHECK(r.requests == r.remote + r.fallbacks + r.requests_open);
    CHECK(r.finished_twice == 0);
  }
}

TEST_CASE("links, rendezvous, credits and routing shape the round trip as they should") {
  auto c = small_system();
  c.jobs = 2;
  const auto base = offload::sim::run_system(c);
  SECTION("a round trip adds itself, and another above the eager limit") {
    c.rtt = 0.010;
    c.eager_limit_bytes = 0;
    const auto eager = offload::sim::run_system(c);
    CHECK(eager.stages[1].mean == Approx(base.stages[1].mean + 0.005).margin(2e-4));
    c.eager_limit_bytes = 65536;  // PN-AK4 (40 kB), PN-AK8 (3 kB) are eager; DeepMET, DeepTau are not
    const auto rndv = offload::sim::run_system(c);
    CHECK(rndv.stages[1].mean > eager.stages[1].mean + 0.004);
    CHECK(rndv.stages[1].mean < eager.stages[1].mean + 0.006);
  }
  SECTION("a slow job link adds the bytes' time; a slow site link shared by all jobs more") {
    c.link_bytes_per_s = 1e8;  // 1.18 MB of DeepTau: 11.8 ms
    const auto slow = offload::sim::run_system(c);
    CHECK(slow.stages[1].p99 > base.stages[1].p99 + 0.01);
    c.link_bytes_per_s = 0;
    c.site_bytes_per_s = 1e8;
    c.jobs = 20;
    auto fast = c;
    fast.site_bytes_per_s = 0;
    CHECK(offload::sim::run_system(c).stages[1].mean > offload::sim::run_system(fast).stages[1].mean + 0.005);
  }
  SECTION("credits hold requests in the transmitter's queue") {
    c.credits = 1;
    const auto r = offload::sim::run_system(c);
    CHECK(r.stages[0].mean > base.stages[0].mean + 1e-3);
    CHECK(r.finished_twice == 0);
  }
  SECTION("least outstanding routing spreads a job's requests as round robin does") {
    c.jobs = 20;
    c.shared_gpus = 2;
    const auto rr = offload::sim::run_system(c);
    c.route = offload::sim::routing::least_outstanding;
    const auto lo = offload::sim::run_system(c);
    CHECK(lo.busy.at("shared") == Approx(rr.busy.at("shared")).epsilon(0.1));
    CHECK(lo.events_per_s_per_job == Approx(rr.events_per_s_per_job).epsilon(0.03));
  }
  SECTION("library costs add to the stages they belong to") {
    c.costs.tx_queue_s = 0.002;
    c.costs.back_fixed_s = 0.003;
    const auto r = offload::sim::run_system(c);
    CHECK(r.stages[0].mean == Approx(base.stages[0].mean + 0.002).margin(1e-4));
    CHECK(r.stages[4].mean == Approx(base.stages[4].mean + 0.003).margin(1e-4));
  }
}

TEST_CASE("the calibration file: written costs read back, bad ones refused with the field") {
  using offload::app::calibration_point;
  // net out = 0.5 ms + 1 ms/MB, back = 0.2 ms flat, 12.5 ms injected one way.
  std::vector<calibration_point> pts{{"a", 4e4, 500, 1e-4, 0.01304, 0.0127, 0.003, 0.0025, 100},
                                     {"b", 1.2e6, 40, 3e-4, 0.0142, 0.0127, 0.002, 0, 300}};
  const auto costs = offload::app::fit_costs(pts, 0.0125, 0.1, "test");
  CHECK(costs.out_fixed_s == Approx(0.5e-3).margin(1e-6));
  CHECK(costs.out_s_per_byte == Approx(1e-9).epsilon(1e-3));
  CHECK(costs.back_fixed_s == Approx(0.2e-3).margin(1e-6));
  CHECK(costs.back_s_per_byte == 0);  // reply sizes span less than 64 KiB
  CHECK(costs.tx_queue_s == Approx(2.5e-4));
  CHECK(costs.batch_overhead_s == Approx(0.5e-3));  // only "a" had an emulated device
  const auto back = offload::app::parse_calibration(offload::app::calibration_json(costs, pts), "x");
  CHECK(back.out_s_per_byte == Approx(costs.out_s_per_byte));
  CHECK(back.tx_progress_cores == Approx(0.1));
  CHECK_THROWS_WITH(offload::app::parse_calibration("{\"tx_queue_ms\": -1}", "f.json"),
                    Catch::Contains("calibration f.json: tx_queue_ms: must be finite and >= 0"));
  CHECK_THROWS_WITH(offload::app::parse_calibration("{\"tx_queue_ms\": 1}", "f.json"),
                    Catch::Contains("out_fixed_ms: missing or not a number"));
  CHECK_THROWS_WITH(offload::app::parse_calibration("[", "f.json"), Catch::Contains("not JSON"));
}

TEST_CASE("a plan: saturation per model, GPUs for the campaign, gain by distance") {
  offload::sim::plan_config p;
  p.base = small_system();
  p.base.seconds = 10;
  p.base.warmup = 2;
  p.cores = 200;
  p.max_jobs = 256;  // the search stops there (DeepMET saturates past it); fast under ASan too
  p.distances = {{"same-node", 0}, {"far", 0.025}};
  const auto r = offload::sim::make_plan(p);
  REQUIRE(r.models.size() == 4);
  for (const auto& m : r.models) {
    CHECK(m.jobs_per_gpu >= 1);
    CHECK(m.gpus == (r.jobs + m.jobs_per_gpu - 1) / m.jobs_per_gpu);
  }
  REQUIRE(r.distances.size() == 2);
  CHECK(r.distances[0].gain > 1);
  CHECK(r.distances[1].round_trip_p50 > r.distances[0].round_trip_p50 + 0.025);
  auto bad = p;
  bad.slowdown = 0;
  CHECK_THROWS_WITH(offload::sim::make_plan(bad), Catch::Contains("slowdown"));
}

TEST_CASE("a shared host: work shares its cores; jobs and a CPU receiver on one host") {
  offload::sim::simulation s;
  offload::sim::shared_host host(s, 1, 0);
  std::vector<double> done;
  host.start(1.0, [&] { done.push_back(s.now()); });
  host.start(1.0, [&] { done.push_back(s.now()); });                         // two on one core: each at half speed
  s.after(3.0, [&] { host.start(0.5, [&] { done.push_back(s.now()); }); });  // alone: full speed
  s.run(10);
  REQUIRE(done.size() == 3);
  CHECK(done[0] == Approx(2.0));
  CHECK(done[1] == Approx(2.0));
  CHECK(done[2] == Approx(3.5));
  offload::sim::shared_host loaded(s, 2, 1.5);  // half a core left
  double end = 0;
  const double start = s.now();
  loaded.start(1.0, [&] { end = s.now(); });
  s.run(20);
  CHECK(end == Approx(start + 2.0));

  // CPU-only, one 4-thread job on a 2-core host: half the rate of its own four cores.
  auto c = small_system();
  c.jobs = 1;
  c.offload = false;
  c.seconds = 400;
  c.warmup = 50;
  const auto own = offload::sim::run_system(c);
  c.host_cores = 2;
  CHECK(offload::sim::run_system(c).events_per_s_per_job == Approx(own.events_per_s_per_job / 2).epsilon(0.05));
  // A CPU receiver computing the models on that host takes its cores from the jobs' work.
  c.offload = true;
  c.cpu_backend = true;
  const auto shared = offload::sim::run_system(c);
  c.host_cores = 0;
  const auto apart = offload::sim::run_system(c);
  CHECK(shared.events_per_s_per_job < apart.events_per_s_per_job * 0.6);
  CHECK(shared.finished_twice == 0);
  // A workload with no CPU cost cannot run CPU-only (it would never advance the clock).
  auto empty = small_system();
  empty.offload = false;
  empty.workload.before_ms = empty.workload.after_ms = 0;
  for (auto& m : empty.workload.modules) m.cpu_ms = 0;
  CHECK_THROWS_WITH(offload::sim::run_system(empty), Catch::Contains("gives no CPU cost per event"));
}

TEST_CASE("a server front end: every request passes it once; overloaded, it serves threads / cost per second") {
  // Closed form: one job, one thread, one event in flight, no CPU, one module of 1 item and no
  // device time: requests go one at a time, so each event takes exactly the front end's cost.
  auto c = small_system();
  c.jobs = 1;
  c.threads = 1;
  c.inflight = 1;
  c.seconds = 10;
  c.warmup = 0;
  c.workload.before_ms = c.workload.after_ms = 0;
  c.workload.cpu_cv = 0;
  c.workload.modules.resize(1);
  c.workload.modules[0].items_mean = 1;
  c.workload.modules[0].items_poisson = false;
  c.profile.models[0].table = {{1, 0}, {2, 0}};  // no device time
  c.workload.modules[0].kernel = c.profile.models[0].name;
  c.front_end = {1, 0.010, 0};  // 10 ms per request
  auto r = offload::sim::run_system(c);
  CHECK(r.events_per_s_per_job == Approx(100).epsilon(0.02));
  CHECK(r.front_end_passed == r.requests);
  CHECK(r.front_end_busy.at("shared") == Approx(1).epsilon(0.02));
  // Overloaded by many jobs: the front end's rate is threads / cost, whatever the load.
  c.jobs = 20;
  c.inflight = 4;
  c.front_end.threads = 2;
  r = offload::sim::run_system(c);
  CHECK(r.events_per_s_per_job * c.jobs == Approx(2 / 0.010).epsilon(0.02));
  CHECK(r.requests == r.remote + r.fallbacks + r.requests_open);
  CHECK(r.events_started == r.events_finished + r.events_open);
  CHECK(r.finished_twice == 0);
  // The per-byte part: a request of B bytes costs B x s_per_byte (here 10 ms in all).
  c.jobs = 1;
  c.inflight = 1;
  const double bytes = c.workload.modules[0].features * 4.0;
  c.front_end = {1, 0, 0.010 / bytes};
  r = offload::sim::run_system(c);
  CHECK(r.events_per_s_per_job == Approx(100).epsilon(0.02));
  auto bad = small_system();
  bad.front_end.threads = -1;
  CHECK_THROWS_WITH(offload::sim::run_system(bad), Catch::Contains("front end"));
}

TEST_CASE("local models run on the job's CPU: no request, their CPU in the event") {
  auto c = small_system();
  c.seconds = 200;
  c.warmup = 20;
  c.local_models = {"pn_ak8", "deepmet", "deeptau"};
  const auto r = offload::sim::run_system(c);
  // Only PN-AK4 goes out: one request per event started, conservation holds.
  CHECK(r.requests <= r.events_started);
  CHECK(r.requests + std::uint64_t(c.jobs * c.inflight) >= r.events_started);
  CHECK(r.requests == r.remote + r.fallbacks + r.requests_open);
  CHECK(r.events_started == r.events_finished + r.events_open);
  // Every model local: the CPU-only rate (the same draws).
  c.local_models = {"pn_ak4", "pn_ak8", "deepmet", "deeptau"};
  const auto all = offload::sim::run_system(c);
  auto cpu = c;
  cpu.offload = false;
  CHECK(all.requests == 0);
  CHECK(all.events_per_s_per_job == Approx(offload::sim::run_system(cpu).events_per_s_per_job).epsilon(1e-9));
  auto bad = small_system();
  bad.local_models = {"nope"};
  CHECK_THROWS_WITH(offload::sim::run_system(bad), Catch::Contains("local model 'nope'"));
}

TEST_CASE("per-model serving: max items per batch and instances of a model's own") {
  simulation s;
  std::vector<double> done;
  batching_config cfg{1, 0, {}, 0, {10}, {2}};
  batching_server server(s, cfg, [](std::size_t, double items) { return items; });  // 1 s per item
  // Four requests of 4 items at t = 0: the first two start alone on the two instances (0..4);
  // the other two wait and form one batch of 8 items (a third would pass 10), 4..12.
  for (int i = 0; i < 4; ++i) server.submit(0, 4, [&](double) { done.push_back(s.now()); });
  s.run(100);
  REQUIRE(done.size() == 4);
  CHECK(done == std::vector<double>{4, 4, 12, 12});
  CHECK(server.batches() == 3);
  CHECK(server.requests() == 4);
  CHECK(server.busy_time() == Approx(12));  // two at once count once
  // Five more of 4 items: batches of at most 10 items, never more than two at once.
  done.clear();
  for (int i = 0; i < 5; ++i) server.submit(0, 4, [&](double) { done.push_back(s.now()); });
  s.run(200);
  CHECK(done.size() == 5);
  CHECK(server.requests() == 9);
}
