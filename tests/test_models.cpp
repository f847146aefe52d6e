// Triton model repositories: every bad repository gives an error naming the file, the field and
// the value; a TorchScript model of the built-in mlp's network gives the built-in's results.
// The TorchScript cases use the repository tests/models/make_repository.py writes (ctest
// fixture models.repository); without python3-torch they say so and pass nothing.
#include <offload/models.hpp>
#include <offload/receiver.hpp>

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <random>

using namespace offload;
namespace fs = std::filesystem;

namespace {

/// A fresh directory under the build tree's temporary folder.
fs::path scratch(const std::string& name) {
  const fs::path dir = fs::temp_directory_path() / ("offload_models_test_" + std::to_string(::getpid())) / name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

void write(const fs::path& file, const std::string& text) {
  fs::create_directories(file.parent_path());
  std::ofstream(file) << text;
}

/// A repository with one model "m" of configuration `config` and a version 1 holding `model`
/// bytes (a real model copied from the fixture when `model` is "real").
fs::path repo_with(const std::string& name, const std::string& config, const std::string& model = "x") {
  const auto dir = scratch(name);
  write(dir / "m" / "config.pbtxt", config);
  fs::create_directories(dir / "m" / "1");
  if (model == "real")
    fs::copy_file(fs::path(OFFLOAD_TEST_MODEL_REPO) / "mlp_ts" / "1" / "model.pt", dir / "m" / "1" / "model.pt");
  else
    write(dir / "m" / "1" / "model.pt", model);
  return dir;
}

/// The error loading (and, with `add`, serving) the repository gives.
std::string error_of(const fs::path& dir, bool add = false) {
  try {
    auto repo = model_repository::load(dir);
    if (add) {
      kernel_registry k;
      repo.add_to(k);
    }
  } catch (const model_repository_error& e) {
    return e.what();
  }
  return "(no error)";
}

const std::string good = R"(platform: "pytorch_libtorch"
max_batch_size: 8
input [ { name: "INPUT__0" data_type: TYPE_FP32 dims: [ 16 ] } ]
output [ { name: "OUTPUT__0" data_type: TYPE_FP32 dims: [ 4 ] } ]
)";

bool have_models() {
  if (fs::exists(fs::path(OFFLOAD_TEST_MODEL_REPO) / "mlp_ts" / "1" / "model.pt") &&
      model_repository::torchscript_available())
    return true;
  WARN("skipped: no TorchScript repository at " OFFLOAD_TEST_MODEL_REPO
       " (python3-torch missing?) or this build has no libtorch");
  return false;
}

}  // namespace

TEST_CASE("a repository's configuration is read as Triton's ModelConfig") {
  const auto dir = repo_with("good", std::string("name: \"m\"\n") + good +
                                         "dynamic_batching { preferred_batch_size: [ 4 ] "
                                         "max_queue_delay_microseconds: 300 priority_levels: 2 "
                                         "default_priority_level: 2 default_queue_policy { max_queue_size: 9 } }\n"
                                         "instance_group [ { count: 2 }, { count: 1 kind: KIND_CPU } ]\n");
  const auto repo = model_repository::load(dir);
  REQUIRE(repo.models().size() == 1);
  const auto& m = repo.models()[0];
  CHECK(m.name == "m");
  CHECK(m.version == "1");
  CHECK(m.platform == "pytorch_libtorch");
  CHECK(m.model_file == dir / "m" / "1" / "model.pt");
  CHECK(m.io.batched);
  CHECK(m.io.inputs.at(0).dims == std::vector<std::int64_t>{-1, 16});
  CHECK(m.io.outputs.at(0).dims == std::vector<std::int64_t>{-1, 4});
  CHECK(m.scheduling.instances == 3);
  CHECK(m.scheduling.preferred_batch == std::vector<std::uint32_t>{4});
  CHECK(m.scheduling.max_queue_delay_us == 300);
  CHECK(m.scheduling.default_priority == 2);
  CHECK(m.scheduling.max_queue == 9);
  receiver_config cfg;
  repo.configure(cfg);
  CHECK(cfg.kernel_instances.at("m") == 3);
  CHECK(cfg.kernel_priority.at("m") == 2);
  CHECK(cfg.kernel_max_queue.at("m") == 9);
  CHECK(cfg.kernel_batching.at("m").max_batch == 0);
  CHECK(cfg.kernel_batching.at("m").max_batch_items == 8);
  CHECK(cfg.kernel_batching.at("m").max_wait == std::chrono::microseconds(300));
}

TEST_CASE("the version policy selects one version directory") {
  auto dir = repo_with("versions", good + "version_policy: { specific: { versions: [ 1 ] } }\n");
  write(dir / "m" / "3" / "model.pt", "x");
  write(dir / "m" / "10" / "model.pt", "x");
  CHECK(model_repository::load(dir).models()[0].version == "1");
  write(dir / "m" / "config.pbtxt", good);  // latest, one version: the highest number
  CHECK(model_repository::load(dir).models()[0].version == "10");
  write(dir / "m" / "config.pbtxt", good + "version_policy: { all: {} }\n");
  CHECK(error_of(dir).find("version_policy (3 versions): mpi-offload serves one version") != std::string::npos);
  write(dir / "m" / "config.pbtxt", good + "version_policy: { specific: { versions: [ 2 ] } }\n");
  CHECK(error_of(dir).find("version_policy specific (2): no such version directory") != std::string::npos);
}

TEST_CASE("every bad repository names the file, the field and the value") {
  const auto has = [](const std::string& error, const std::string& part) {
    INFO(error);
    return error.find(part) != std::string::npos;
  };
  const auto config_of = [](const fs::path& dir) { return (dir / "m" / "config.pbtxt").string(); };

  auto d = scratch("none");
  CHECK(has(error_of(d), "holds no model directory"));
  CHECK(has(error_of(d / "absent"), "absent: not a directory"));
  fs::create_directories(d / "m" / "1");
  CHECK(has(error_of(d), (d / "m" / "config.pbtxt").string() + ": missing"));

  d = repo_with("syntax", good + "max_batch_size: \"eight\"\n");
  CHECK(has(error_of(d), config_of(d) + ":5:"));
  d = repo_with("unknown_field", good + "sequence_batching { }\n");
  CHECK(has(error_of(d), config_of(d) + ":5:"));
  CHECK(has(error_of(d), "sequence_batching"));
  d = repo_with("onnx", "platform: \"onnxruntime_onnx\"\n" + good.substr(good.find('\n') + 1));
  CHECK(has(error_of(d), config_of(d) + ": platform (onnxruntime_onnx): ONNX Runtime is not in Debian"));
  d = repo_with("tensorrt", "backend: \"tensorrt\"\n" + good.substr(good.find('\n') + 1));
  CHECK(has(error_of(d), "backend (tensorrt): TensorRT is not in Debian"));
  d = repo_with("mystery", "platform: \"mystery\"\n" + good.substr(good.find('\n') + 1));
  CHECK(has(error_of(d), "platform (mystery): unknown"));
  d = repo_with("name", "name: \"other\"\n" + good);
  CHECK(has(error_of(d), "name (other): must be the model directory's name, 'm'"));
  d = repo_with("string", R"(platform: "pytorch_libtorch"
input [ { name: "s" data_type: TYPE_STRING dims: [ 1 ] } ]
output [ { name: "y" data_type: TYPE_FP32 dims: [ 1 ] } ]
)");
  CHECK(has(error_of(d), "input 's' data_type (TYPE_STRING): not a tensor type"));
  d = repo_with("zero_dim", R"(platform: "pytorch_libtorch"
input [ { name: "x" data_type: TYPE_FP32 dims: [ 0 ] } ]
output [ { name: "y" data_type: TYPE_FP32 dims: [ 1 ] } ]
)");
  CHECK(has(error_of(d), "input 'x' dims ([0]): each dim is -1 (any size) or at least 1"));
  d = repo_with("variable_output", R"(platform: "pytorch_libtorch"
input [ { name: "x" data_type: TYPE_FP32 dims: [ -1 ] } ]
output [ { name: "y" data_type: TYPE_FP32 dims: [ -1 ] } ]
)");
  CHECK(has(error_of(d), "output 'y' dims ([-1]): an output's dims other than the batch dimension must be known"));
  d = repo_with("optional", R"(platform: "pytorch_libtorch"
input [ { name: "x" data_type: TYPE_FP32 dims: [ 2 ] optional: true } ]
output [ { name: "y" data_type: TYPE_FP32 dims: [ 1 ] } ]
)");
  CHECK(has(error_of(d), "input 'x' optional (true): optional inputs are not supported"));
  d = repo_with("reshape", R"(platform: "pytorch_libtorch"
input [ { name: "x" data_type: TYPE_FP32 dims: [ 6 ] reshape: { shape: [ 4, 2 ] } } ]
output [ { name: "y" data_type: TYPE_FP32 dims: [ 1 ] } ]
)");
  CHECK(has(error_of(d), "input 'x' reshape ([4,2]): a reshape must hold as many elements as dims [6]"));
  d = repo_with("preferred", good + "dynamic_batching { preferred_batch_size: [ 16 ] }\n");
  CHECK(has(error_of(d), "dynamic_batching preferred_batch_size (16): must lie in 1..max_batch_size (8)"));
  d = repo_with("delay", good + "dynamic_batching { default_queue_policy { timeout_action: DELAY } }\n");
  CHECK(has(error_of(d), "timeout_action (DELAY)"));
  d = repo_with("decoupled", good + "model_transaction_policy { decoupled: true }\n");
  CHECK(has(error_of(d), "model_transaction_policy decoupled (true)"));
  d = repo_with("no_file", good + "default_model_filename: \"weights.pt\"\n");
  CHECK(has(error_of(d), "default_model_filename (weights.pt): no file " + (d / "m" / "1" / "weights.pt").string()));
  d = scratch("no_version");
  write(d / "m" / "config.pbtxt", good);
  CHECK(has(error_of(d), "version directories"));
  if (model_repository::torchscript_available()) {
    d = repo_with("garbage_model", good, "not a TorchScript archive");
    CHECK(has(error_of(d, true), (d / "m" / "1" / "model.pt").string() + ": not a TorchScript model"));
  } else {
    d = repo_with("no_torch", good);
    CHECK(has(error_of(d, true), "this build has no libtorch"));
  }
}

TEST_CASE("a model whose file does not fit its configuration is refused at load, naming both") {
  if (!have_models()) return;
  // The model takes 16 features and gives 4 scores; these configurations say otherwise.
  const auto error_with = [](const std::string& name, const std::string& in_dims, const std::string& out_type,
                             const std::string& out_dims) {
    const auto d = repo_with(name,
                             "platform: \"pytorch_libtorch\"\nmax_batch_size: 8\n"
                             "input [ { name: \"INPUT__0\" data_type: TYPE_FP32 dims: [ " +
                                 in_dims + " ] } ]\noutput [ { name: \"OUTPUT__0\" data_type: " + out_type +
                                 " dims: [ " + out_dims + " ] } ]\n",
                             "real");
    return std::make_pair(d, error_of(d, true));
  };
  auto [d, e] = error_with("wrong_dims", "12", "TYPE_FP32", "4");
  INFO(e);
  CHECK(e.find((d / "m" / "1" / "model.pt").string() + ": a trial run on zeros against config.pbtxt failed") !=
        std::string::npos);
  CHECK(error_with("wrong_output", "16", "TYPE_FP32", "5")
            .second.find("output 'OUTPUT__0' has shape [1,4], its configuration says [1,5]") != std::string::npos);
  CHECK(error_with("wrong_dtype", "16", "TYPE_FP64", "4")
            .second.find("output 'OUTPUT__0' is Float, its configuration says f64") != std::string::npos);
}

TEST_CASE("the TorchScript model gives the built-in mlp's results, alone and in a joined batch") {
  if (!have_models()) return;
  kernel_registry kernels;
  model_repository::load(OFFLOAD_TEST_MODEL_REPO).add_to(kernels);
  const kernel* ts = kernels.find("mlp_ts");
  const kernel* named = kernels.find("mlp_named");
  REQUIRE(ts != nullptr);
  REQUIRE(named != nullptr);
  CHECK(named->version() == "2");
  const kernel& mlp = *kernel_registry::builtin().find("mlp");
  std::mt19937 rng(5);
  std::normal_distribution<float> normal(0.0f, 2.0f);
  std::vector<float> f(7 * 16);
  for (auto& v : f) v = normal(rng);
  const std::vector<product> builtin_in{product::make("features", f)};
  const message expected = run_cpu(mlp, product_views(builtin_in), {});
  // mlp_ts: a flat product of 7 x 16, and the same shaped [7, 16].
  for (const auto& in : {product::make("INPUT__0", f), product::make("INPUT__0", f, {7, 16})}) {
    const message got = run_cpu(*ts, product_views(std::vector<product>{in}), {});
    const auto& g = got.products()[0];
    CHECK(g.name == "OUTPUT__0");
    CHECK(g.shape() == dims_t{7, 4});
    const auto e = expected.products()[0].as<float>();
    const auto a = g.as<float>();
    REQUIRE(a.size() == e.size());
    for (std::size_t i = 0; i < a.size(); ++i) CHECK(a[i] == Approx(e[i]).epsilon(1e-5).margin(1e-6));
  }
  // Two requests joined into one run give each its own rows.
  const std::vector<product> a{product::make("INPUT__0", std::vector<float>(f.begin(), f.begin() + 32), {2, 16})};
  const std::vector<product> b{product::make("INPUT__0", std::vector<float>(f.begin() + 32, f.end()), {5, 16})};
  const product_views va(a), vb(b);
  const product_views* ins[] = {&va, &vb};
  message_writer wa({}, ts->output_specs(va)), wb({}, ts->output_specs(vb));
  message_writer* outs[] = {&wa, &wb};
  ts->run_cpu_batch(ins, outs);
  const message ma = std::move(wa).finish_message(), mb = std::move(wb).finish_message();
  const auto e = expected.products()[0].as<float>();
  for (std::size_t i = 0; i < 8; ++i) CHECK(ma.products()[0].as<float>()[i] == Approx(e[i]).epsilon(1e-5).margin(1e-6));
  for (std::size_t i = 0; i < 20; ++i)
    CHECK(mb.products()[0].as<float>()[i] == Approx(e[8 + i]).epsilon(1e-5).margin(1e-6));
  // Bad requests: input_error naming the input.
  const std::vector<product> wide{product::make("INPUT__0", std::vector<float>(65 * 16), {65, 16})};
  CHECK_THROWS_WITH(ts->output_specs(product_views(wide)),
                    "model 'mlp_ts': input 'INPUT__0' has 65 rows, over its max_batch_size of 64");
  const std::vector<product> f64{product::make("INPUT__0", std::vector<double>(16))};
  CHECK_THROWS_WITH(ts->output_specs(product_views(f64)),
                    "model 'mlp_ts': input 'INPUT__0' is f64, the model takes f32");
  const std::vector<product> cols{product::make("INPUT__0", std::vector<float>(30), {2, 15})};
  CHECK_THROWS_WITH(ts->output_specs(product_views(cols)),
                    "model 'mlp_ts': input 'INPUT__0' has shape [2,15], the model takes [-1,16]");
}
