#pragma once
/// \file
/// Device profiles: what a GPU (or any accelerator) takes to run a batch of each model, as
/// measured, for the emulated device backend (offload/emulation.hpp: emulated_backend) and the
/// studies built on it. A profile is a JSON file (profiles/*.json; docs/emulated-device.md has
/// the format): per model, a table of batch size (items: jets, taus, events) against service
/// time, interpolated linearly (and extrapolated from the last two rows); how many batches the
/// device runs at once; its host<->device copies; and a source for every figure.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace offload {

/// One model's service time on the device.
struct model_timing {
  std::string name;    ///< the kernel it stands for (kernel::name)
  std::string source;  ///< where the table comes from
  /// (batch items, milliseconds), batch strictly increasing, time not decreasing.
  std::vector<std::pair<double, double>> table;
  /// Least-squares fit of the table, t(b) = fit_t0_ms + fit_ms_per_item * b (for reports and models).
  double fit_t0_ms = 0;
  double fit_ms_per_item = 0;

  /// Milliseconds one batch of `items` takes: linear between rows, the first row's time below
  /// the table, the last two rows' line above it.
  double time_ms(double items) const;
};

struct device_profile {
  std::string path;               ///< the file it was read from
  std::string device;             ///< e.g. "NVIDIA T4"
  std::string source;             ///< where the profile as a whole comes from
  std::uint32_t concurrency = 1;  ///< batches the device runs at once
  std::string concurrency_source;
  /// Host<->device copies: added to each batch's time unless the tables include them.
  double copy_gbytes_per_s = 0;
  double copy_latency_us = 0;
  bool copies_in_tables = false;
  std::string copy_source;
  std::vector<model_timing> models;
  /// Multiplies every time (the runs' --time-scale, so that the client CPU and the device keep
  /// their ratio when a study is run faster or slower than real time). 1 as read.
  double time_scale = 1;

  /// The model for kernel `name`, or nullptr.
  const model_timing* find(std::string_view name) const noexcept;
  /// Every model's name, comma-separated (for error messages).
  std::string model_names() const;
  /// Seconds one batch takes: the model's time for `items`, plus copies of `bytes_in` and
  /// `bytes_out` unless the tables include them, times time_scale.
  double batch_seconds(const model_timing& m, double items, double bytes_in, double bytes_out) const;
};

/// Reads a profile. Throws std::invalid_argument naming the file and the field for a file that
/// cannot be read or parsed, a missing or mistyped field, a non-monotonic table, a negative or
/// non-finite figure, or a figure without its source.
device_profile load_device_profile(const std::string& path);
/// The same from text (`origin` names it in errors).
device_profile parse_device_profile(const std::string& text, const std::string& origin);

}  // namespace offload
