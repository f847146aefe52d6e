// offload-kernel-bench: each kernel's device time at a large batch against its roofline floor,
// the larger of (bytes moved / measured memory bandwidth) and (flops / measured peak rate),
// on the current GPU. Staging copies are not included (see offload-run for end to end).
#include <offload/kernel.hpp>

#include "kernels/cuda/cuda_kernels.hpp"

#include <CLI/CLI.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>

namespace {

struct case_def {
  std::string kernel;
  offload::input_params params;
  double flops = 0;  // total for the case
  bool fp64 = false;
  std::string size_text;
};

}  // namespace

int main(int argc, char** argv) {
  int reps = 20;
  double scale = 1.0;
  int device = 0;
  CLI::App app{"offload-kernel-bench: device time of each kernel against its roofline floor"};
  app.option_defaults()->always_capture_default();
  app.add_option("--reps", reps, "timed launches per kernel (median reported)")->check(CLI::Range(1, 10000));
  app.add_option("--scale", scale, "multiplies every problem size (smaller for a quick look)")
      ->check(CLI::Range(1e-4, 4.0));
  app.add_option("--device", device, "CUDA device")->check(CLI::Range(0, 1024));
  CLI11_PARSE(app, argc, argv);

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

    auto n = [&](double v) { return std::max<std::uint64_t>(1, std::uint64_t(v * scale)); };
    const std::uint64_t jets = n(1 << 20), elements = n(1 << 24), echo_bytes = n(1 << 28);
    const auto side = std::max<std::uint64_t>(8, std::uint64_t(4096 * std::sqrt(scale)));
    const double mlp_flops_per_jet = 2.0 * (16 * 64 + 64 * 64 + 64 * 4);
    const std::uint64_t iterations = 64;
    std::vector<case_def> cases{
        {"echo", {1, echo_bytes, 0}, 0, false, std::to_string(echo_bytes >> 20) + " MiB"},
        {"synthetic",
         {1, elements, iterations},
         2.0 * double(iterations) * double(elements),
         true,
         std::to_string(elements) + " x " + std::to_string(iterations) + " it"},
        {"mlp", {1, jets, 0}, mlp_flops_per_jet * double(jets), false, std::to_string(jets) + " jets"},
        {"clustering", {1, side, 0}, 0, false, std::to_string(side) + "^2 cells"},
    };
    std::printf("%-11s %-22s %10s %10s %9s %8s\n", "kernel", "size", "time_ms", "floor_ms", "bound", "x_floor");
    const auto& registry = offload::kernel_registry::builtin();
    for (const auto& c : cases) {
      const auto& k = *registry.find(c.kernel);
      auto inputs = k.make_inputs(c.params);
      offload::product_views in(inputs);
      auto specs = k.output_specs(in);
      double bytes = 0;
      for (const auto& p : in) bytes += double(p.size_bytes());
      for (const auto& s : specs) bytes += double(s.size_bytes());
      const double t = offload::kernels::cuda::time_launch(c.kernel, in, specs, reps);
      const double memory_floor = bytes / peaks.bandwidth;
      const double compute_floor = c.flops / (c.fp64 ? peaks.fp64_flops : peaks.fp32_flops);
      const double floor = std::max(memory_floor, compute_floor);
      std::printf("%-11s %-22s %10.3f %10.3f %9s %8.2f\n", c.kernel.c_str(), c.size_text.c_str(), t * 1e3, floor * 1e3,
                  compute_floor > memory_floor ? (c.fp64 ? "fp64" : "fp32") : "memory", t / floor);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "offload-kernel-bench: %s\n", e.what());
    return 1;
  }
  return 0;
}
