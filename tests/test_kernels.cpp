#include <offload/kernel.hpp>
#include <offload/plugin.hpp>

#include "kernels/builtin.hpp"

#include <catch2/catch.hpp>

#include <cmath>

using namespace offload;

namespace {

const kernel& get(std::string_view name) {
  const kernel* k = kernel_registry::builtin().find(name);
  REQUIRE(k != nullptr);
  return *k;
}

/// Runs a kernel on the CPU and keeps the decoded outputs alive.
struct outputs {
  message msg;
  const product_views& products() const { return msg.products(); }
};
outputs run(const kernel& k, const std::vector<product>& in) {
  auto m = run_cpu(k, product_views(in), {message_kind::reply, 1, 0, status::ok});
  const auto decoded = decode(m.bytes().span());  // what a kernel writes is a valid message
  REQUIRE(decoded.ok());
  REQUIRE(decoded.value().products.size() == m.products().size());
  return {std::move(m)};
}

}  // namespace

TEST_CASE("registry: names sorted, ids are indices, subsets and signatures") {
  const auto& all = kernel_registry::builtin();
  CHECK(all.names() == std::vector<std::string>{"clustering", "echo", "mlp", "synthetic"});
  CHECK(all.id_of("mlp") == 2u);
  CHECK(all.by_id(2)->name() == "mlp");
  CHECK(all.by_id(4) == nullptr);
  CHECK(all.signature() == "clustering@1\necho@1\nmlp@1\nsynthetic@1\n");
  auto sub = all.subset({"synthetic", "echo"});
  CHECK(sub.names() == std::vector<std::string>{"echo", "synthetic"});
  CHECK(sub.id_of("synthetic") == 1u);
  CHECK_THROWS_WITH(all.subset({"nope"}), Catch::Contains("unknown kernel 'nope'"));
  CHECK_THROWS_WITH(all.subset({"echo", "echo"}), Catch::Contains("twice"));
}

namespace {
/// A user's kernel: y = x + 1 on f64, with a settable name and version.
class plus_one final : public kernel {
 public:
  plus_one(std::string name, std::string version) : m_name(std::move(name)), m_version(std::move(version)) {}
  std::string_view name() const noexcept override { return m_name; }
  std::string_view version() const noexcept override { return m_version; }
  std::vector<product_spec> output_specs(const product_views& in) const override {
    return {{"y", dtype::f64, in.get<double>("x").size()}};
  }
  void run_cpu(const product_views& in, message_writer& out) const override {
    auto x = in.get<double>("x");
    auto y = out.payload_as<double>(0);
    for (std::size_t i = 0; i < x.size(); ++i) y[i] = x[i] + 1;
  }
  std::vector<product> make_inputs(const input_params& p) const override {
    return {product::make("x", std::vector<double>(p.size, double(p.seed)))};
  }
  std::uint64_t default_size() const noexcept override { return 3; }

 private:
  std::string m_name, m_version;
};
}  // namespace

TEST_CASE("registries users build: built-ins plus their own kernels, checked names and versions") {
  static const plus_one mine("plus_one", "3");
  kernel_registry r = kernel_registry::builtin();
  r.add(mine);
  r.add(std::make_shared<plus_one>("aaa", "1.2"), "test");
  CHECK(r.names() == std::vector<std::string>{"aaa", "clustering", "echo", "mlp", "plus_one", "synthetic"});
  CHECK(r.signature() == "aaa@1.2\nclustering@1\necho@1\nmlp@1\nplus_one@3\nsynthetic@1\n");
  CHECK(r.origin("aaa") == "test");
  CHECK(r.origin("echo") == "built in");
  CHECK(r.origin("plus_one") == "the application");
  CHECK(r.id_of("plus_one") == 4u);
  // It runs like a built-in.
  auto out = run(*r.find("plus_one"), mine.make_inputs({5, 2, 0}));
  CHECK(out.products().get<double>("y")[1] == 6.0);

  CHECK_THROWS_WITH(r.add(std::make_shared<plus_one>("echo", "9"), "plugin x.so"),
                    "kernel 'echo' from plugin x.so is already registered (from built in)");
  CHECK_THROWS_WITH(r.add(std::make_shared<plus_one>("two words", "1")), Catch::Contains("kernel name 'two words'"));
  CHECK_THROWS_WITH(r.add(std::make_shared<plus_one>("at@sign", "1")), Catch::Contains("without spaces and '@'"));
  CHECK_THROWS_WITH(r.add(std::make_shared<plus_one>("v", "")), Catch::Contains("version of kernel 'v' is empty"));
  CHECK_THROWS_WITH(r.add(std::shared_ptr<const kernel>()), Catch::Contains("is null"));
  CHECK(r.size() == 6);  // nothing added by the refusals

  kernel_registry sub = r.subset({"plus_one", "echo"});
  CHECK(sub.signature() == "echo@1\nplus_one@3\n");
  CHECK(sub.origin("plus_one") == "the application");
  kernel_registry merged;
  merged.add(sub, "merged");
  CHECK(merged.origin("echo") == "merged");
}

#ifdef OFFLOAD_TEST_PLUGINS
namespace {
std::string plugin_path(const std::string& variant) {
  return std::string(OFFLOAD_TEST_PLUGINS) + "/plugin_" + variant + ".so";
}
/// The plugin_error text of loading `variant` into the built-ins (which must stay unchanged).
std::string load_error(const std::string& path) {
  kernel_registry r = kernel_registry::builtin();
  try {
    load_plugin(r, path);
  } catch (const plugin_error& e) {
    CHECK(r.signature() == kernel_registry::builtin().signature());
    return e.what();
  }
  return "(loaded)";
}
}  // namespace

TEST_CASE("plugins: a good one adds its kernels, with the plugin as their origin") {
  kernel_registry r = kernel_registry::builtin();
  load_plugin(r, plugin_path("good"));
  REQUIRE(r.find("affine") != nullptr);
  CHECK(r.origin("affine") == "plugin " + plugin_path("good"));
  CHECK(r.signature() == "affine@1\nclustering@1\necho@1\nmlp@1\nsynthetic@1\n");
  const kernel& k = *r.find("affine");
  auto out = run(k, k.make_inputs({7, 3, 0}));
  CHECK(out.products().get<double>("y")[2] == 2 * (7 + 1.0) + 1);
  // The same plugin twice: its kernel is a duplicate.
  CHECK_THROWS_WITH(load_plugin(r, plugin_path("good")),
                    Catch::Contains("kernel 'affine' from plugin " + plugin_path("good") + " is already registered"));
}

TEST_CASE("plugins: each way a plugin can be bad is an error naming the file") {
  const auto missing = plugin_path("missing");
  CHECK_THAT(load_error(missing),
             Catch::StartsWith("plugin " + missing + " cannot be loaded: ") && Catch::Contains("No such file"));
  const auto not_elf = std::string(OFFLOAD_TEST_PLUGINS) + "/../CTestTestfile.cmake";
  CHECK_THAT(load_error(not_elf), Catch::StartsWith("plugin " + not_elf + " cannot be loaded: "));
  CHECK(load_error(plugin_path("api_999")) ==
        "plugin " + plugin_path("api_999") +
            " was built for plugin API version 999; this library has version 1 (rebuild the plugin against this "
            "mpi-offload)");
  CHECK_THAT(load_error(plugin_path("no_entry")),
             Catch::StartsWith("plugin " + plugin_path("no_entry") + ": no entry point offload_plugin_api_version"));
  CHECK(load_error(plugin_path("throws")) == "plugin " + plugin_path("throws") +
                                                 ": registering its kernels failed: the calibration file "
                                                 "/nonexistent/weights.bin is missing");
  CHECK(load_error(plugin_path("empty")) == "plugin " + plugin_path("empty") + " registered no kernel");
  CHECK(load_error(plugin_path("duplicate")) == "plugin " + plugin_path("duplicate") + ": kernel 'echo' from plugin " +
                                                    plugin_path("duplicate") +
                                                    " is already registered (from built in)");
}
#endif

TEST_CASE("echo returns its inputs") {
  std::vector<product> in{product::make("a", std::vector<double>{1.0, 2.0}),
                          product::make("b", std::vector<std::uint8_t>{9})};
  auto out = run(get("echo"), in);
  CHECK(compare_products(product_views(in), out.products()).empty());
}

TEST_CASE("synthetic: acc = acc/2 + x, worked by hand") {
  std::vector<product> in{product::make("x", std::vector<double>{1.0, 0.5, -2.0}),
                          product::make("iterations", std::vector<std::int64_t>{3})};
  auto out = run(get("synthetic"), in);
  auto y = out.products().get<double>("y");
  REQUIRE(y.size() == 3);
  CHECK(y[0] == 1.75);   // 1, 1.5, 1.75
  CHECK(y[1] == 0.875);  // 0.5, 0.75, 0.875
  CHECK(y[2] == -3.5);
  in[1] = product::make("iterations", std::vector<std::int64_t>{0});
  CHECK(run(get("synthetic"), in).products().get<double>("y")[0] == 0.0);
}

TEST_CASE("synthetic rejects bad inputs with a clear error") {
  const auto& k = get("synthetic");
  std::vector<product> no_x{product::make("iterations", std::vector<std::int64_t>{3})};
  CHECK_THROWS_WITH(k.output_specs(product_views(no_x)), Catch::Contains("'x' is missing"));
  std::vector<product> wrong_type{product::make("x", std::vector<float>{1.0f}),
                                  product::make("iterations", std::vector<std::int64_t>{3})};
  CHECK_THROWS_WITH(k.output_specs(product_views(wrong_type)), Catch::Contains("'x' is f32, not f64"));
  std::vector<product> negative{product::make("x", std::vector<double>{1.0}),
                                product::make("iterations", std::vector<std::int64_t>{-1})};
  CHECK_THROWS_WITH(k.output_specs(product_views(negative)), Catch::Contains("'iterations' is -1"));
  std::vector<product> two{product::make("x", std::vector<double>{1.0}),
                           product::make("iterations", std::vector<std::int64_t>{1, 2})};
  CHECK_THROWS_WITH(k.output_specs(product_views(two)), Catch::Contains("must have 1 element"));
}

TEST_CASE("mlp building blocks, worked by hand") {
  const float w[] = {1, 2, -1, 0};
  const float b[] = {0.5f, 0.25f};
  kernels::dense_layer l{w, b, 2, 2};
  const float x[] = {1, 1};
  float y[2];
  kernels::dense_forward(l, x, y, false);
  CHECK(y[0] == 3.5f);
  CHECK(y[1] == -0.75f);
  kernels::dense_forward(l, x, y, true);
  CHECK(y[1] == 0.0f);
  float v[] = {0.0f, std::log(2.0f), std::log(3.0f), std::log(4.0f)};
  kernels::softmax(v, 4);
  CHECK(v[0] == Approx(0.1f));
  CHECK(v[1] == Approx(0.2f));
  CHECK(v[2] == Approx(0.3f));
  CHECK(v[3] == Approx(0.4f));
}

TEST_CASE("mlp matches a naive double-precision forward pass over the same weights") {
  const auto& k = get("mlp");
  auto in = k.make_inputs({7, 5, 0});
  auto out = run(k, in);
  auto scores = out.products().get<float>("scores");
  auto features = product_views(in).get<float>("features");
  REQUIRE(scores.size() == 5 * 4);
  const auto& wt = kernels::mlp_weights::standard();
  for (int jet = 0; jet < 5; ++jet) {
    std::vector<double> a(features.begin() + jet * 16, features.begin() + (jet + 1) * 16);
    for (int layer = 0; layer < 3; ++layer) {
      const int nin = wt.width[layer], nout = wt.width[layer + 1];
      std::vector<double> z(nout);
      for (int o = 0; o < nout; ++o) {
        double s = wt.b[layer][o];
        for (int i = 0; i < nin; ++i) s += double(wt.w[layer][o * nin + i]) * a[i];
        z[o] = layer < 2 ? std::max(s, 0.0) : s;
      }
      a = z;
    }
    double m = *std::max_element(a.begin(), a.end()), sum = 0;
    for (auto& v : a) sum += (v = std::exp(v - m));
    double total = 0;
    for (int c = 0; c < 4; ++c) {
      CHECK(scores[jet * 4 + c] == Approx(a[c] / sum).epsilon(1e-5));
      total += scores[jet * 4 + c];
    }
    CHECK(total == Approx(1.0).epsilon(1e-6));
  }
}

TEST_CASE("mlp rejects features that are not whole jets") {
  std::vector<product> in{product::make("features", std::vector<float>(17, 0.0f))};
  CHECK_THROWS_WITH(get("mlp").output_specs(product_views(in)), Catch::Contains("not a multiple of 16"));
}

TEST_CASE("clustering: 4-connected components of a 3x4 grid, worked by hand") {
  // 1.0 0.0 0.9 0.9
  // 1.0 0.0 0.0 0.9
  // 0.0 0.7 0.0 0.0     threshold 0.5: clusters {0,4}, {2,3,7}, {9}
  std::vector<product> in{
      product::make("energy", std::vector<float>{1.0f, 0, 0.9f, 0.9f, 1.0f, 0, 0, 0.9f, 0, 0.7f, 0, 0}),
      product::make("shape", std::vector<std::int32_t>{3, 4}), product::make("threshold", std::vector<float>{0.5f})};
  auto out = run(get("clustering"), in);
  auto label = out.products().get<std::int32_t>("cluster");
  auto energy = out.products().get<float>("cluster_energy");
  CHECK(std::vector<std::int32_t>(label.begin(), label.end()) ==
        std::vector<std::int32_t>{0, -1, 2, 2, 0, -1, -1, 2, -1, 9, -1, -1});
  CHECK(energy[0] == Approx(2.0f));
  CHECK(energy[4] == Approx(2.0f));
  CHECK(energy[2] == Approx(2.7f));
  CHECK(energy[7] == Approx(2.7f));
  CHECK(energy[9] == Approx(0.7f));
  CHECK(energy[1] == 0.0f);
}

TEST_CASE("clustering rejects inconsistent shapes") {
  const auto& k = get("clustering");
  auto make = [](std::vector<std::int32_t> shape, std::size_t cells) {
    return std::vector<product>{product::make("energy", std::vector<float>(cells, 1.0f)), product::make("shape", shape),
                                product::make("threshold", std::vector<float>{0.5f})};
  };
  CHECK_THROWS_WITH(k.output_specs(product_views(make({3, 4}, 11))), Catch::Contains("has 11 cells"));
  CHECK_THROWS_WITH(k.output_specs(product_views(make({3}, 3))), Catch::Contains("must have 2 elements"));
  CHECK_THROWS_WITH(k.output_specs(product_views(make({-3, -4}, 12))), Catch::Contains("must be positive"));
  CHECK(k.output_specs(product_views(make({3, 4}, 12))).size() == 2);
}

TEST_CASE("generated inputs are deterministic and valid for their kernel") {
  for (const auto& name : kernel_registry::builtin().names()) {
    const auto& k = get(name);
    auto a = k.make_inputs({99, 8, 10});
    auto b = k.make_inputs({99, 8, 10});
    auto c = k.make_inputs({100, 8, 10});
    INFO(name);
    CHECK(compare_products(product_views(a), product_views(b)).empty());
    CHECK_FALSE(compare_products(product_views(a), product_views(c)).empty());
    CHECK_NOTHROW(k.output_specs(product_views(a)));
  }
}

TEST_CASE("joined requests of row-wise kernels give exactly the outputs of separate runs") {
  for (const char* name : {"echo", "mlp", "synthetic"}) {
    INFO(name);
    const auto& k = get(name);
    std::vector<std::vector<product>> inputs{k.make_inputs({1, 3, 7}), k.make_inputs({2, 1, 7}),
                                             k.make_inputs({3, 5, 7})};
    std::vector<product_views> views;
    for (const auto& in : inputs) views.emplace_back(in);
    std::vector<const product_views*> ins;
    for (const auto& v : views) ins.push_back(&v);
    auto joined = join_inputs(k, ins);
    REQUIRE(joined.has_value());
    auto joined_out = run(k, *joined);
    std::vector<message_writer> writers;
    for (const auto& v : views) writers.emplace_back(message_info{}, k.output_specs(v));
    std::vector<message_writer*> outs;
    for (auto& w : writers) outs.push_back(&w);
    split_outputs(joined_out.products(), outs);
    for (std::size_t i = 0; i < inputs.size(); ++i) {
      auto got = message::from(std::move(writers[i]).finish());
      REQUIRE(got.ok());
      CHECK(compare_with_cpu(k, views[i], got.value().products()).empty());
    }
  }
}

TEST_CASE("requests that cannot be joined are refused") {
  const auto& clustering = get("clustering");
  auto a = clustering.make_inputs({1, 4, 0});
  product_views va(a);
  const product_views* one[] = {&va, &va};
  CHECK_FALSE(join_inputs(clustering, one).has_value());

  const auto& synthetic = get("synthetic");
  auto s1 = synthetic.make_inputs({1, 4, 10});
  auto s2 = synthetic.make_inputs({1, 4, 11});  // other iterations
  product_views v1(s1), v2(s2);
  const product_views* two[] = {&v1, &v2};
  CHECK_FALSE(join_inputs(synthetic, two).has_value());

  const auto& echo = get("echo");
  std::vector<product> e1{product::make("a", std::vector<float>{1})}, e2{product::make("b", std::vector<float>{1})};
  product_views w1(e1), w2(e2);
  const product_views* names[] = {&w1, &w2};
  CHECK_FALSE(join_inputs(echo, names).has_value());
}

TEST_CASE("split_outputs checks that the joined outputs add up") {
  std::vector<product> joined{product::make("payload", std::vector<std::uint8_t>{1, 2, 3})};
  std::vector<product_spec> specs{{"payload", dtype::u8, 2}};
  message_writer a(message_info{}, specs), b(message_info{}, specs);
  message_writer* outs[] = {&a, &b};
  CHECK_THROWS_AS(split_outputs(product_views(joined), outs), offload::output_error);  // 3 bytes for 4
}
