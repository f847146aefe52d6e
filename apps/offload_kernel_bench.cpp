// offload-kernel-bench: each kernel's device time at a large batch against its roofline floor,
// the larger of (bytes moved / measured memory bandwidth) and (flops / measured peak rate),
// on the current GPU, for the built-in kernels and those of --plugin libraries (each kernel's
// cost() gives its flops). Staging copies are not included (see offload-run for end to end).
#include "apps/common/logging.hpp"

#include <offload/kernel.hpp>
#include <offload/plugin.hpp>

#include "kernels/cuda/cuda_kernels.hpp"

#include <CLI/CLI.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>

namespace {

/// The input size of the benchmark of `k`: a large batch (built-ins: as before; others:
/// 4096 typical requests), times `scale`.
std::uint64_t bench_size(const offload::kernel& k, double scale) {
  auto n = [&](double v) { return std::max<std::uint64_t>(1, std::uint64_t(v * scale)); };
  const auto name = k.name();
  if (name == "echo") return n(1 << 28);                                                                // bytes
  if (name == "synthetic") return n(1 << 24);                                                           // elements
  if (name == "mlp") return n(1 << 20);                                                                 // jets
  if (name == "clustering") return std::max<std::uint64_t>(8, std::uint64_t(4096 * std::sqrt(scale)));  // grid side
  return n(4096.0 * double(k.default_size()));
}

}  // namespace

int main(int argc, char** argv) {
  int reps = 20;
  double scale = 1.0;
  int device = 0;
  std::vector<std::string> plugins;
  CLI::App app{"offload-kernel-bench: device time of each kernel against its roofline floor"};
  app.option_defaults()->always_capture_default();
  app.add_option("--reps", reps, "timed launches per kernel (median reported)")->check(CLI::Range(1, 10000));
  app.add_option("--scale", scale, "multiplies every problem size (smaller for a quick look)")
      ->check(CLI::Range(1e-4, 4.0));
  app.add_option("--device", device, "CUDA device")->check(CLI::Range(0, 1024));
  app.add_option("--plugin", plugins, "also measure this plugin's kernels (repeatable)");
  std::string log_level = "warn";
  offload::app::add_log_level(app, log_level);
  CLI11_PARSE(app, argc, argv);
  offload::app::setup_logging(log_level, "offload-kernel-bench");

  offload::kernel_registry registry = offload::kernel_registry::builtin();
  try {
    for (const auto& path : plugins) offload::load_plugin(registry, path);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "offload-kernel-bench: %s\n", e.what());
    return 2;
  }

  std::string why;
  if (!offload::kernels::cuda::device_available(why)) {
    std::fprintf(stderr, "offload-kernel-bench: %s\n", why.c_str());
    return 77;
  }
  try {
    offload::kernels::cuda::use_device(device);
    std::printf("%s\n", offload::kernels::cuda::device_report(device).c_str());
    const auto peaks = offload::kernels::cuda::measure_peaks();
    std::printf("measured: memory %.0f GB/s (copy, read+write), FP32 %.1f TFLOP/s, FP64 %.1f TFLOP/s (FMA chains)\n",
                peaks.bandwidth / 1e9, peaks.fp32_flops / 1e12, peaks.fp64_flops / 1e12);

    std::printf("%-11s %-12s %10s %10s %9s %8s\n", "kernel", "size", "time_ms", "floor_ms", "bound", "x_floor");
    for (const auto& name : registry.names()) {
      const auto& k = *registry.find(name);
      if (offload::kernels::cuda::implementation(k) == nullptr) {
        std::printf("%-11s (no CUDA implementation)\n", name.c_str());
        continue;
      }
      const std::uint64_t size = bench_size(k, scale);
      auto inputs = k.make_inputs({1, size, 64});
      offload::product_views in(inputs);
      auto specs = k.output_specs(in);
      double bytes = 0;
      for (const auto& p : in) bytes += double(p.size_bytes());
      for (const auto& sp : specs) bytes += double(sp.size_bytes());
      const auto cost = k.cost(in);
      const double t = offload::kernels::cuda::time_launch(k, in, specs, reps);
      const double memory_floor = bytes / peaks.bandwidth;
      const double compute_floor = cost.flops / (cost.fp64 ? peaks.fp64_flops : peaks.fp32_flops);
      const double floor = std::max(memory_floor, compute_floor);
      std::printf("%-11s %-12llu %10.3f %10.3f %9s %8.2f\n", name.c_str(), static_cast<unsigned long long>(size),
                  t * 1e3, floor * 1e3, compute_floor > memory_floor ? (cost.fp64 ? "fp64" : "fp32") : "memory",
                  t / floor);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "offload-kernel-bench: %s\n", e.what());
    return 1;
  }
  return 0;
}
