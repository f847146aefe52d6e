// Triton model repositories: config.pbtxt read with protobuf's TextFormat against our
// ModelConfig (src/kserve/proto/model_config.proto), every field honoured or refused by name.
#include "torchscript.hpp"

#include <offload/log.hpp>
#include <offload/models.hpp>
#include <offload/receiver.hpp>

#include <google/protobuf/io/tokenizer.h>
#include <google/protobuf/text_format.h>
#include <kserve_proto/model_config.pb.h>

#include <dlfcn.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <set>
#include <sstream>

namespace offload {

namespace {

namespace fs = std::filesystem;

std::span<const std::int64_t> span_of(const google::protobuf::RepeatedField<std::int64_t>& f) {
  return {f.data(), std::size_t(f.size())};
}

/// The dtype of a configuration's data_type (Triton's TYPE_*); nullopt for TYPE_STRING and others.
std::optional<dtype> dtype_of_config(int type) {
  switch (type) {
    case inference::TYPE_BOOL: return dtype::boolean;
    case inference::TYPE_UINT8: return dtype::u8;
    case inference::TYPE_UINT16: return dtype::u16;
    case inference::TYPE_UINT32: return dtype::u32;
    case inference::TYPE_UINT64: return dtype::u64;
    case inference::TYPE_INT8: return dtype::i8;
    case inference::TYPE_INT16: return dtype::i16;
    case inference::TYPE_INT32: return dtype::i32;
    case inference::TYPE_INT64: return dtype::i64;
    case inference::TYPE_FP16: return dtype::f16;
    case inference::TYPE_FP32: return dtype::f32;
    case inference::TYPE_FP64: return dtype::f64;
    case inference::TYPE_BF16: return dtype::bf16;
    default: return std::nullopt;
  }
}

/// Collects the text-format parser's first error with its line and column.
class first_error final : public google::protobuf::io::ErrorCollector {
 public:
  void AddError(int line, int column, const std::string& message) override {
    if (text.empty()) text = std::to_string(line + 1) + ":" + std::to_string(column + 1) + ": " + message;
  }
  std::string text;
};

/// The checks of one model's configuration; every error names the file.
class model_reader {
 public:
  model_reader(fs::path dir, const inference::ModelConfig& c) : m_dir(std::move(dir)), m_c(c) {
    m_out.name = m_dir.filename().string();
    m_out.config_file = m_dir / "config.pbtxt";
  }

  repository_model read() {
    platform();
    unsupported();
    if (m_c.max_batch_size() < 0) fail("max_batch_size", std::to_string(m_c.max_batch_size()), "must be 0 or more");
    m_out.max_batch_size = m_c.max_batch_size();
    m_out.io.batched = m_c.max_batch_size() > 0;
    m_out.io.max_batch_size = m_c.max_batch_size();
    if (m_c.input_size() == 0) fail("input", "(none)", "a model needs at least one input");
    if (m_c.output_size() == 0) fail("output", "(none)", "a model needs at least one output");
    std::set<std::string> names;
    for (const auto& in : m_c.input()) {
      const std::string field = "input '" + in.name() + "'";
      if (!names.insert(in.name()).second) fail(field, in.name(), "the name repeats");
      if (in.optional()) fail(field + " optional", "true", "optional inputs are not supported");
      if (in.is_shape_tensor()) fail(field + " is_shape_tensor", "true", "shape tensors are not supported");
      if (in.allow_ragged_batch()) fail(field + " allow_ragged_batch", "true", "ragged batches are not supported");
      if (in.is_non_linear_format_io())
        fail(field + " is_non_linear_format_io", "true", "non-linear formats are not supported");
      m_out.io.inputs.push_back(tensor(field, in.name(), in.data_type(), in.dims(), true));
      reshape(field, in.name(), in.dims(), in.has_reshape() ? &in.reshape() : nullptr);
    }
    for (const auto& out : m_c.output()) {
      const std::string field = "output '" + out.name() + "'";
      if (!names.insert(out.name()).second) fail(field, out.name(), "the name repeats an input's or output's");
      if (out.is_shape_tensor()) fail(field + " is_shape_tensor", "true", "shape tensors are not supported");
      if (out.is_non_linear_format_io())
        fail(field + " is_non_linear_format_io", "true", "non-linear formats are not supported");
      if (!out.label_filename().empty())
        fail(field + " label_filename", out.label_filename(), "classification labels are not supported");
      m_out.io.outputs.push_back(tensor(field, out.name(), out.data_type(), out.dims(), false));
      reshape(field, out.name(), out.dims(), out.has_reshape() ? &out.reshape() : nullptr);
    }
    scheduling();
    version();
    return std::move(m_out);
  }

 private:
  [[noreturn]] void fail(const std::string& field, const std::string& value, const std::string& why) const {
    throw model_repository_error(m_out.config_file.string() + ": " + field + " (" + value + "): " + why);
  }

  void platform() {
    if (!m_c.name().empty() && m_c.name() != m_out.name)
      fail("name", m_c.name(), "must be the model directory's name, '" + m_out.name + "'");
    const std::string& p = m_c.platform();
    const std::string& b = m_c.backend();
    if (p == "pytorch_libtorch" || (p.empty() && b == "pytorch")) {
      if (!b.empty() && b != "pytorch") fail("backend", b, "platform pytorch_libtorch runs on backend 'pytorch'");
      m_out.platform = "pytorch_libtorch";
      return;
    }
    const std::string what = p.empty() ? "backend" : "platform";
    const std::string value = p.empty() ? b : p;
    if (value.empty()) fail("platform", "(none)", "give platform: \"pytorch_libtorch\" (TorchScript)");
    static const std::map<std::string, std::string> elsewhere{
        {"onnxruntime_onnx", "ONNX Runtime"},  {"onnxruntime", "ONNX Runtime"},
        {"tensorrt_plan", "TensorRT"},         {"tensorrt", "TensorRT"},
        {"tensorflow_graphdef", "TensorFlow"}, {"tensorflow_savedmodel", "TensorFlow"},
        {"tensorflow", "TensorFlow"},          {"openvino", "OpenVINO"}};
    if (auto it = elsewhere.find(value); it != elsewhere.end())
      fail(what, value,
           it->second + " is not in Debian, so mpi-offload cannot run it; TorchScript (pytorch_libtorch) is supported");
    if (value == "python") fail(what, value, "Python models are not supported (yet); TorchScript is");
    fail(what, value, "unknown; mpi-offload runs TorchScript models (platform: \"pytorch_libtorch\")");
  }

  void unsupported() {
    if (!m_c.runtime().empty()) fail("runtime", m_c.runtime(), "custom backend runtimes are not supported");
    if (m_c.model_transaction_policy().decoupled())
      fail("model_transaction_policy decoupled", "true", "decoupled models (several responses) are not supported");
    if (m_c.response_cache().enable())
      logger()->info("{}: response_cache is not used (every request is computed)", m_out.config_file.string());
    for (const auto& [key, value] : m_c.parameters())
      logger()->info("{}: parameter {} = '{}' is not used by mpi-offload's TorchScript executor",
                     m_out.config_file.string(), key, value.string_value());
    for (const auto& g : m_c.instance_group()) {
      if (g.count() < 0) fail("instance_group count", std::to_string(g.count()), "must be 0 or more");
      if (g.kind() == inference::ModelInstanceGroup::KIND_MODEL)
        fail("instance_group kind", "KIND_MODEL", "instances placed by the model are not supported");
    }
  }

  tensor_spec tensor(const std::string& field, const std::string& name, int type,
                     const google::protobuf::RepeatedField<std::int64_t>& dims, bool input) {
    if (name.empty()) fail(field + " name", "(empty)", "every tensor needs a name");
    const std::optional<dtype> t = dtype_of_config(type);
    if (!t)
      fail(field + " data_type", inference::DataType_Name(inference::DataType(type)),
           "not a tensor type mpi-offload has (TYPE_STRING has none)");
    if (dims.empty()) fail(field + " dims", "[]", "give the dims (without the batch dimension when batched)");
    tensor_spec spec{name, *t, {}};
    if (m_out.io.batched) spec.dims.push_back(-1);
    for (auto d : dims) {
      if (d == 0 || d < -1) fail(field + " dims", shape_text(span_of(dims)), "each dim is -1 (any size) or at least 1");
      if (d == -1 && !input)
        fail(field + " dims", shape_text(span_of(dims)),
             "an output's dims other than the batch dimension must be known before the model runs");
      spec.dims.push_back(d);
    }
    return spec;
  }

  void reshape(const std::string& field, const std::string& name,
               const google::protobuf::RepeatedField<std::int64_t>& dims, const inference::ModelTensorReshape* r) {
    if (r == nullptr) return;
    const std::vector<std::int64_t> to(r->shape().begin(), r->shape().end());
    const bool variable = std::any_of(dims.begin(), dims.end(), [](std::int64_t d) { return d < 0; }) ||
                          std::any_of(to.begin(), to.end(), [](std::int64_t d) { return d < 0; });
    const auto a = shape_elements(span_of(dims));
    const auto b = shape_elements(to);
    if (variable || !a || !b || *a != *b)
      fail(field + " reshape", shape_text(to),
           "a reshape must hold as many elements as dims " + shape_text(span_of(dims)) + ", with no -1 in either");
    m_out.reshape[name] = to;
  }

  void scheduling() {
    auto& s = m_out.scheduling;
    std::int64_t instances = 0;
    for (const auto& g : m_c.instance_group())
      instances += g.count() == 0 ? 1 : g.count();  // Triton: count 1 when unset
    s.instances = std::uint32_t(std::clamp<std::int64_t>(instances == 0 ? 1 : instances, 1, 64));
    if (!m_c.has_dynamic_batching()) return;
    const auto& d = m_c.dynamic_batching();
    if (m_out.max_batch_size == 0)
      fail("dynamic_batching", "{...}", "a model with max_batch_size 0 has no batch dimension to batch along");
    s.dynamic_batching = true;
    for (auto p : d.preferred_batch_size()) {
      if (p < 1 || p > m_out.max_batch_size)
        fail("dynamic_batching preferred_batch_size", std::to_string(p),
             "must lie in 1..max_batch_size (" + std::to_string(m_out.max_batch_size) + ")");
      s.preferred_batch.push_back(std::uint32_t(p));
    }
    s.max_queue_delay_us = d.max_queue_delay_microseconds();
    if (d.priority_levels() > 0) {
      if (d.default_priority_level() < 1 || d.default_priority_level() > d.priority_levels())
        fail("dynamic_batching default_priority_level", std::to_string(d.default_priority_level()),
             "must lie in 1..priority_levels (" + std::to_string(d.priority_levels()) + ")");
      s.default_priority = std::uint32_t(d.default_priority_level());
    }
    if (!d.priority_queue_policy().empty())
      fail("dynamic_batching priority_queue_policy", "{...}", "queue policies per priority level are not supported");
    if (d.has_default_queue_policy()) {
      const auto& q = d.default_queue_policy();
      if (q.timeout_action() == inference::ModelQueuePolicy::DELAY)
        fail("dynamic_batching default_queue_policy timeout_action", "DELAY",
             "a request past its timeout is rejected (REJECT), never delayed");
      if (q.allow_timeout_override())
        logger()->info("{}: allow_timeout_override: a request's own timeout always applies here",
                       m_out.config_file.string());
      s.max_queue = q.max_queue_size();
      s.default_timeout_us = q.default_timeout_microseconds();
    }
  }

  void version() {
    std::vector<std::int64_t> found;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(m_dir, ec)) {
      const std::string n = e.path().filename().string();
      if (e.is_directory() && !n.empty() && n.size() < 18 && std::all_of(n.begin(), n.end(), ::isdigit))
        found.push_back(std::stoll(n));
    }
    std::sort(found.begin(), found.end());
    if (found.empty()) fail("version directories", m_dir.string(), "none: put the model in " + (m_dir / "1").string());
    std::vector<std::int64_t> chosen;
    const auto& p = m_c.version_policy();
    if (p.has_specific()) {
      for (auto v : p.specific().versions()) {
        if (!std::binary_search(found.begin(), found.end(), v))
          fail("version_policy specific", std::to_string(v), "no such version directory in " + m_dir.string());
        chosen.push_back(v);
      }
    } else if (p.has_all()) {
      chosen = found;
    } else {
      const std::size_t n = p.has_latest() && p.latest().num_versions() > 0 ? p.latest().num_versions() : 1;
      chosen.assign(found.end() - std::ptrdiff_t(std::min(n, found.size())), found.end());
    }
    if (chosen.size() != 1)
      fail("version_policy", std::to_string(chosen.size()) + " versions",
           "mpi-offload serves one version of a model at a time: select one (latest, or specific { versions: N })");
    m_out.version = std::to_string(chosen.front());
    const std::string file = m_c.default_model_filename().empty() ? "model.pt" : m_c.default_model_filename();
    m_out.model_file = m_dir / m_out.version / file;
    if (!fs::is_regular_file(m_out.model_file))
      fail("default_model_filename", file, "no file " + m_out.model_file.string());
  }

  fs::path m_dir;
  const inference::ModelConfig& m_c;
  repository_model m_out;
};

}  // namespace

namespace detail {
namespace {

using entry_point = void (*)(const repository_model&, std::shared_ptr<const kernel>&);

/// The TorchScript module, loaded once: its entry point, or why it cannot be loaded.
struct torchscript_module {
  entry_point make = nullptr;
  std::string problem;
};

const torchscript_module& torchscript() {
  static const torchscript_module module = [] {
    torchscript_module m;
#if OFFLOAD_HAVE_TORCH
    // $OFFLOAD_TORCHSCRIPT_MODULE, else where it is installed, else where it was built.
    std::vector<std::string> paths;
    if (const char* env = std::getenv("OFFLOAD_TORCHSCRIPT_MODULE"); env != nullptr && *env != '\0')
      paths.push_back(env);
    paths.push_back(OFFLOAD_TORCHSCRIPT_INSTALLED);
    paths.push_back(OFFLOAD_TORCHSCRIPT_BUILT);
    std::string tried;
    for (const auto& path : paths) {
      if (!fs::exists(path)) {
        tried += (tried.empty() ? "" : ", ") + path + " (absent)";
        continue;
      }
      void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
      if (handle == nullptr) {
        tried += (tried.empty() ? "" : ", ") + path + " (" + dlerror() + ")";
        continue;
      }
      m.make = reinterpret_cast<entry_point>(dlsym(handle, "offload_torchscript_kernel"));
      if (m.make != nullptr) return m;
      tried += (tried.empty() ? "" : ", ") + path + " (no entry point offload_torchscript_kernel)";
    }
    m.problem = "the TorchScript module cannot be loaded: tried " + tried;
#else
    m.problem = "this build has no libtorch (install libtorch-dev and configure again)";
#endif
    return m;
  }();
  return module;
}

}  // namespace

std::shared_ptr<const kernel> make_torchscript_kernel(const repository_model& m) {
  const auto& module = torchscript();
  if (module.make == nullptr)
    throw model_repository_error(m.config_file.string() + ": platform (" + m.platform + "): " + module.problem);
  std::shared_ptr<const kernel> k;
  module.make(m, k);
  return k;
}

bool torchscript_available() noexcept {
  return torchscript().make != nullptr;
}

}  // namespace detail

model_repository model_repository::load(const std::filesystem::path& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec))
    throw model_repository_error("model repository " + dir.string() + ": not a directory");
  model_repository repo;
  repo.m_dir = dir;
  std::vector<fs::path> dirs;
  for (const auto& e : fs::directory_iterator(dir, ec))
    if (e.is_directory()) dirs.push_back(e.path());
  std::sort(dirs.begin(), dirs.end());
  if (dirs.empty()) throw model_repository_error("model repository " + dir.string() + ": holds no model directory");
  for (const auto& d : dirs) {
    const fs::path file = d / "config.pbtxt";
    std::ifstream f(file);
    if (!f)
      throw model_repository_error(file.string() +
                                   ": missing (every model directory needs its config.pbtxt; mpi-offload does not "
                                   "guess a configuration from the model)");
    std::stringstream text;
    text << f.rdbuf();
    inference::ModelConfig config;
    google::protobuf::TextFormat::Parser parser;
    first_error errors;
    parser.RecordErrorsTo(&errors);
    if (!parser.ParseFromString(text.str(), &config))
      throw model_repository_error(file.string() + ":" + errors.text +
                                   " (mpi-offload reads the fields docs/models.md lists, and refuses the others)");
    repo.m_models.push_back(model_reader(d, config).read());
  }
  return repo;
}

void model_repository::add_to(kernel_registry& kernels) const {
  for (const auto& m : m_models) kernels.add(detail::make_torchscript_kernel(m), m.config_file.parent_path().string());
}

void model_repository::configure(receiver_config& cfg) const {
  for (const auto& m : m_models) {
    const auto& s = m.scheduling;
    cfg.kernel_instances[m.name] = s.instances;
    if (s.default_priority > 0) cfg.kernel_priority[m.name] = s.default_priority;
    if (s.max_queue > 0) cfg.kernel_max_queue[m.name] = s.max_queue;
    receiver_config::batching b;  // without dynamic_batching, Triton runs each request alone
    if (s.dynamic_batching) {
      b.max_batch = 0;  // requests: as many as fit max_batch_size rows
      b.max_batch_items = std::uint64_t(m.max_batch_size);
      b.max_wait = std::chrono::microseconds(s.max_queue_delay_us);
      if (!s.preferred_batch.empty())
        logger()->info(
            "{}: preferred_batch_size counts rows in Triton and requests here: not applied (batches "
            "of up to max_batch_size rows form within max_queue_delay_microseconds)",
            m.config_file.string());
    }
    cfg.kernel_batching[m.name] = b;
  }
}

bool model_repository::torchscript_available() noexcept {
  return detail::torchscript_available();
}

}  // namespace offload
