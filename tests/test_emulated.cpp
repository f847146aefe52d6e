// The emulated device: profiles, the model stand-ins, the backend's timing model, workload files.
#include "apps/common/workload.hpp"

#include <offload/device_profile.hpp>
#include <offload/emulation.hpp>
#include <offload/model.hpp>
#include <offload/receiver.hpp>

#include <catch2/catch.hpp>

#include <chrono>
#include <ctime>
#include <fstream>
#include <thread>
#include <vector>

using namespace offload;

namespace {

std::string profile_text(const std::string& table, const std::string& concurrency = "2") {
  return R"({"device": "test GPU", "source": "this test",
             "concurrency": {"value": )" +
         concurrency + R"(, "source": "this test"},
             "host_device": {"bandwidth_gbytes_per_s": 10, "latency_us": 5, "included_in_tables": true, "source": "t"},
             "models": {"m": {"source": "this test", "table": )" +
         table + "}}}";
}

std::string error_of(const std::string& text) {
  try {
    parse_device_profile(text, "p.json");
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "(no error)";
}

double thread_cpu_s() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
}

}  // namespace

TEST_CASE("a device profile is read, interpolated and fitted") {
  const auto p = parse_device_profile(profile_text("[[1, 2.0], [4, 5.0], [8, 9.0]]"), "p.json");
  CHECK(p.device == "test GPU");
  CHECK(p.concurrency == 2);
  REQUIRE(p.find("m") != nullptr);
  CHECK(p.find("other") == nullptr);
  const auto& m = *p.find("m");
  CHECK(m.time_ms(0) == Approx(2.0));  // below the table: the first row
  CHECK(m.time_ms(1) == Approx(2.0));
  CHECK(m.time_ms(2.5) == Approx(3.5));  // between rows: linear
  CHECK(m.time_ms(8) == Approx(9.0));
  CHECK(m.time_ms(12) == Approx(13.0));  // above: the last two rows' line
  CHECK(m.fit_ms_per_item == Approx(1.0).epsilon(0.01));
  CHECK(m.fit_t0_ms == Approx(1.0).epsilon(0.01));
  CHECK(p.batch_seconds(m, 4, 1e6, 0) == Approx(5e-3));  // copies in the tables: nothing added
}

TEST_CASE("a bad device profile is refused naming the file and the field") {
  CHECK_THAT(error_of("{"), Catch::Contains("device profile p.json: not valid JSON"));
  CHECK_THAT(error_of(R"({"source": "x"})"), Catch::Contains("device profile p.json: device: missing"));
  CHECK_THAT(error_of(profile_text("[[1, 2.0], [1, 3.0]]")),
             Catch::Contains("models.m.table[1]: batch 1 does not follow the previous row's"));
  CHECK_THAT(error_of(profile_text("[[1, 2.0], [2, 1.0]]")),
             Catch::Contains("models.m.table[1]: time 1.0 ms is less than the previous"));
  CHECK_THAT(error_of(profile_text("[[1, -2.0]]")),
             Catch::Contains("models.m.table[0] ms: is -2.0; it must be positive"));
  CHECK_THAT(error_of(profile_text("[]")), Catch::Contains("models.m.table: must be a non-empty array"));
  CHECK_THAT(error_of(profile_text("[[1, 2.0]]", "0")), Catch::Contains("concurrency.value: is 0"));
  CHECK_THAT(error_of(profile_text("[[1, 2.0]]", "1.5")), Catch::Contains("concurrency.value: must be a whole number"));
  std::string no_source = profile_text("[[1, 2.0]]");
  no_source.replace(no_source.find(R"("source": "this test", "table")"), 23, "");
  CHECK_THAT(error_of(no_source), Catch::Contains("models.m.source: missing"));
  CHECK_THROWS_WITH(load_device_profile("/nonexistent.json"), Catch::Contains("/nonexistent.json: cannot be read"));
}

TEST_CASE("the shipped profiles and the miniaod workload are valid and match their sources") {
  for (const char* name : {"t4", "t4-trt"}) {
    const auto p = load_device_profile(app::find_data_file("profiles", name));
    for (const char* model : {"pn_ak4", "pn_ak8", "deepmet", "deeptau"}) CHECK(p.find(model) != nullptr);
  }
  // PN-AK4 (PyTorch) on a T4: 806 inferences/s at batch 1, 5512.53 at 256 (the facts file).
  const auto t4 = load_device_profile(app::find_data_file("profiles", "t4"));
  CHECK(t4.find("pn_ak4")->time_ms(1) == Approx(1000.0 / 806).epsilon(1e-3));
  CHECK(t4.find("pn_ak4")->time_ms(256) == Approx(256000.0 / 5512.53).epsilon(1e-3));
  const auto w = app::make_workload("miniaod", kernel_registry::builtin(), "", 0, 0);
  REQUIRE(w.modules.size() == 4);
  double module_ms = 0, mb = 0;
  for (const auto& m : w.modules) {
    module_ms += m.cpu_ms;
    mb += m.input_mb;
    CHECK(m.model);
    CHECK(t4.find(m.kernel) != nullptr);
  }
  CHECK(module_ms == Approx(88.1));
  CHECK(w.before_ms + w.after_ms == Approx(905.2));
  CHECK(mb == Approx(1.553));
  CHECK(w.modules[0].cpu_ms == 42.4);
  CHECK(w.modules[3].input_mb == 1.18);
}

TEST_CASE("a bad workload file is refused naming the file and the field") {
  auto error = [](const std::string& text) {
    try {
      app::parse_workload(text, "w.json");
    } catch (const std::invalid_argument& e) {
      return std::string(e.what());
    }
    return std::string("(no error)");
  };
  const std::string head = R"({"name": "w", "source": "s", "cpu_ms_before": 1, "cpu_ms_after": 1, "modules": )";
  CHECK_THAT(error(head + "[]}"), Catch::Contains("workload w.json: modules: must be a non-empty array"));
  CHECK_THAT(error(head + R"([{"name": "a"}]})"), Catch::Contains("modules[0]: give one of \"model\""));
  CHECK_THAT(error(head + R"([{"name": "a", "model": "x", "source": "s", "input_mb": -1}]})"),
             Catch::Contains("modules[0].input_mb: is -1"));
  CHECK_THAT(error(head + R"([{"name": "a", "model": "x", "source": "s", "input_mb": 1, "outputs_per_item": 2,
                               "items": {"mean": 1.5, "distribution": "fixed"}}]})"),
             Catch::Contains("modules[0].items.mean: must be a whole number"));
  CHECK_THAT(error(head + R"([{"name": "a", "model": "x", "source": "s", "input_mb": 1, "outputs_per_item": 2,
                               "items": {"mean": 2, "distribution": "normal"}}]})"),
             Catch::Contains("modules[0].items.distribution: is 'normal'"));
  CHECK_THAT(error(R"({"name": "w", "source": "s", "cpu_ms_after": 1, "modules": []})"),
             Catch::Contains("workload w.json: cpu_ms_before: missing"));
  CHECK_THAT(
      error(head + R"([{"name": "a", "kernel": "echo", "size": 8}, {"name": "a", "kernel": "echo", "size": 8}]})"),
      Catch::Contains("modules[1].name: 'a' is the name of an earlier module too"));
  CHECK_THROWS_WITH(app::make_workload("nope", kernel_registry::builtin(), "", 0, 0),
                    Catch::Contains("no workloads called 'nope' (known: ") && Catch::Contains("miniaod"));
}

TEST_CASE("Poisson items per event have the workload's mean") {
  app::module_spec m;
  m.model = true;
  m.items_mean = 2.79;
  m.items_poisson = true;
  double sum = 0;
  const int n = 20000;
  for (int i = 0; i < n; ++i) sum += double(m.items_for(std::uint64_t(i) * 0x9E3779B97F4A7C15ull));
  CHECK(sum / n == Approx(2.79).epsilon(0.03));
}

TEST_CASE("a model stand-in writes the same scores computed, held or emulated") {
  const auto k = make_model_kernel({"m", 10, 3, false});
  const auto held = make_model_kernel({"m", 10, 3, true});
  CHECK(k->version() == "1-f10-o3");
  const auto inputs = k->make_inputs({7, 4, 1000});
  const product_views in(inputs);
  CHECK(k->items(in) == 4);
  const auto computed = run_cpu(*k, in, {});
  CHECK(computed.products().at("scores").count == 12);
  CHECK(compare_with_cpu(*held, in, computed.products()).empty());
  auto specs = k->output_specs(in);
  message_writer w(message_info{}, specs);
  REQUIRE(k->emulate_outputs(in, w));
  const auto emulated = std::move(w).finish_message();
  CHECK(compare_with_cpu(*k, in, emulated.products()).empty());
  // Held: the thread waits items x iterations ns without computing.
  const auto slow = k->make_inputs({7, 4, 10'000'000});  // 40 ms
  const double cpu0 = thread_cpu_s();
  const auto t0 = std::chrono::steady_clock::now();
  run_cpu(*held, product_views(slow), {});
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  CHECK(wall >= 0.040);
  CHECK(thread_cpu_s() - cpu0 < 0.5 * wall);
  // Features that are not whole items are refused.
  const auto bad = std::vector<product>{product::make("features", std::vector<float>(15)),
                                        product::make("iterations", std::vector<std::int64_t>{1})};
  CHECK_THROWS_WITH(k->output_specs(product_views(bad)), Catch::Contains("not a multiple of 10"));
}

TEST_CASE("the emulated backend holds each batch for t(b), at most `concurrency` at once, off the CPU") {
  // t(b) = 40 ms + 10 ms per item beyond the first; two batches at once.
  const auto p = parse_device_profile(profile_text("[[1, 40.0], [11, 140.0]]", "2"), "p.json");
  const auto be = emulated_backend(p);
  CHECK(be->name() == "emulated");
  CHECK_FALSE(be->on_cpu());  // cheap kernels never run inline in its place
  CHECK(be->concurrency() == 2);
  CHECK_THAT(be->description(), Catch::Contains("EMULATED (test GPU"));
  const auto k = make_model_kernel({"m", 4, 2, false});
  auto run = [&](std::uint64_t items) {
    const auto inputs = k->make_inputs({1, items, 1});
    const product_views in(inputs);
    auto specs = k->output_specs(in);
    message_writer w(message_info{}, specs);
    const product_views* ins[] = {&in};
    message_writer* outs[] = {&w};
    const auto t0 = std::chrono::steady_clock::now();
    be->run(*k, ins, outs);
    const auto out = std::move(w).finish_message();
    CHECK(compare_with_cpu(*k, in, out.products()).empty());  // exact outputs
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  };
  SECTION("a batch of b items takes t(b), without using its thread's CPU") {
    const double cpu0 = thread_cpu_s();
    const double one = run(1);
    const double six = run(6);
    CHECK(one >= 0.040);
    CHECK(one < 0.040 + 0.5);  // generous: a loaded machine; the benchmark has the exact figures
    CHECK(six >= 0.090);
    CHECK(six < 0.090 + 0.5);
    CHECK(thread_cpu_s() - cpu0 < 0.5 * (one + six));
  }
  SECTION("at most `concurrency` batches run at once") {
    const auto t0 = std::chrono::steady_clock::now();
    std::vector<std::thread> threads;
    for (int i = 0; i < 4; ++i) threads.emplace_back([&] { run(1); });
    for (auto& t : threads) t.join();
    const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    CHECK(wall >= 0.080);       // four 40 ms batches, two at a time
    CHECK(wall < 0.080 + 0.5);  // and not one at a time (160 ms) unless the machine is very loaded
  }
  SECTION("a kernel the profile has no model for fails, naming the profile") {
    const auto other = make_model_kernel({"other", 4, 2, false});
    const auto inputs = other->make_inputs({1, 1, 1});
    const product_views in(inputs);
    auto specs = other->output_specs(in);
    message_writer w(message_info{}, specs);
    const product_views* ins[] = {&in};
    message_writer* outs[] = {&w};
    CHECK_THROWS_WITH(be->run(*other, ins, outs),
                      Catch::Contains("device profile p.json has no model 'other' (it has: m)"));
  }
}

TEST_CASE("an emulated device needs a profile with models") {
  CHECK_THROWS_WITH(emulated_backend(device_profile{}), Catch::Contains("needs a device profile with models"));
}

TEST_CASE("backend kinds and their names map both ways") {
  for (auto k : {backend_kind::automatic, backend_kind::cpu, backend_kind::cuda})
    CHECK(backend_from_name(to_string(k)) == k);
  CHECK_FALSE(backend_from_name("emulated").has_value());  // the lab's, passed in as a backend
  CHECK(to_string(backend_kind::automatic) == "auto");
  CHECK_FALSE(backend_from_name("gpu").has_value());
  CHECK_FALSE(backend_from_name("").has_value());
}
