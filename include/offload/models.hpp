#pragma once
/// \file
/// Triton model repositories: `REPO/NAME/config.pbtxt` and `REPO/NAME/VERSION/model.pt`, read
/// and checked once, each model then a kernel (name, version) beside the built-ins and plugins,
/// run by the platform's executor (TorchScript through libtorch: `pytorch_libtorch`).
/// docs/models.md lists the configuration fields honoured and those refused.

#include <offload/kernel.hpp>

#include <cstdint>
#include <filesystem>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace offload {

struct receiver_config;

/// A repository that cannot be served: the text names the file, the field and the value.
class model_repository_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// How a model's requests are scheduled, from its configuration's dynamic_batching and
/// instance_group (applied with model_repository::configure).
struct model_scheduling {
  bool dynamic_batching = false;               ///< the configuration has a dynamic_batching block
  std::vector<std::uint32_t> preferred_batch;  ///< preferred_batch_size (rows)
  std::uint64_t max_queue_delay_us = 0;        ///< max_queue_delay_microseconds
  std::uint32_t default_priority = 0;          ///< default_priority_level (0: none)
  std::uint32_t max_queue = 0;                 ///< default_queue_policy.max_queue_size (0: none)
  std::uint64_t default_timeout_us = 0;        ///< default_queue_policy.default_timeout_microseconds
  std::uint32_t instances = 1;                 ///< the instance groups' counts, summed
};

/// One model of a repository, at the one version its version_policy selects.
struct repository_model {
  std::string name;
  std::string version;                ///< the version directory's name
  std::string platform;               ///< "pytorch_libtorch"
  std::filesystem::path config_file;  ///< REPO/NAME/config.pbtxt
  std::filesystem::path model_file;   ///< REPO/NAME/VERSION/model.pt (default_model_filename)
  std::int64_t max_batch_size = 0;    ///< 0: the model takes no batch dimension
  model_io io;                        ///< with the batch dimension (-1) first when batched
  /// Per input and output, by name: the shape the model itself takes or gives (Triton's
  /// `reshape`, without the batch dimension); absent: its dims.
  std::map<std::string, std::vector<std::int64_t>> reshape;
  model_scheduling scheduling;
};

/// A Triton model repository, read and checked when it is loaded; nothing is served from a
/// repository that has one bad model.
class model_repository {
 public:
  /// Reads every model directory of `dir`: its config.pbtxt (protobuf text format, Triton's
  /// ModelConfig) and its version directories. model_repository_error names the file, the field
  /// and the value of the first problem: a missing or unparsable configuration, an unknown or
  /// unsupported platform, a field this library does not honour, a bad dtype or dims, a missing
  /// version or model file.
  static model_repository load(const std::filesystem::path& dir);

  const std::filesystem::path& dir() const noexcept { return m_dir; }
  const std::vector<repository_model>& models() const noexcept { return m_models; }

  /// Adds one kernel per model to `kernels` (origin: the model's directory), loading each model
  /// file with its platform's executor; model_repository_error when one does not load, when its
  /// platform's executor is not in this build, or when its inputs and outputs do not fit the
  /// configuration.
  void add_to(kernel_registry& kernels) const;

  /// Sets `cfg` from the models' scheduling, per model: its instances (`kernel_instances`),
  /// default priority (`kernel_priority`), queue bound (`kernel_max_queue`) and dynamic batching
  /// (`kernel_batching`: batches of up to max_batch_size rows within max_queue_delay; without
  /// dynamic_batching each request runs alone, as in Triton).
  void configure(receiver_config& cfg) const;

  /// Whether TorchScript models can run: this build found libtorch and its executor module
  /// (offload_torchscript.so) loads.
  static bool torchscript_available() noexcept;

 private:
  std::filesystem::path m_dir;
  std::vector<repository_model> m_models;
};

}  // namespace offload
