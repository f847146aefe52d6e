#pragma once
/// \file
/// Model stand-ins: kernels shaped like an ML model's inference, defined by data (a workload
/// file names them), so that a workload's modules have realistic inputs and outputs and a
/// device profile can give each its own service time. One request holds `items` inferences
/// (jets, taus, events): input "features", f32 [items x features]; input "iterations", i64 [1];
/// output "scores", f32 [items x outputs]. The scores are a cheap, exact function of the
/// features; the CPU cost of a real model is the calibrated loop (the synthetic kernel's) run
/// `iterations` times per item, whose result is discarded. The emulated device backend writes
/// the same scores without that loop (kernel::emulate_outputs).

#include <offload/kernel.hpp>

#include <cstdint>
#include <memory>
#include <string>

namespace offload {

struct model_spec {
  std::string name;            ///< the kernel's name, e.g. "pn_ak4" (a device profile's model)
  std::uint32_t features = 1;  ///< f32 inputs per item
  std::uint32_t outputs = 1;   ///< f32 scores per item
  /// Emulated CPU cost: the CPU implementation holds its thread `iterations` ns per item
  /// (a timed wait, not computation) instead of running the loop. Outputs are the same.
  bool hold_cpu = false;
};

/// A model stand-in kernel (see the file comment); its version names its shape, so that ranks
/// whose workloads disagree are refused at the handshake. Throws std::invalid_argument for
/// zero features or outputs.
std::shared_ptr<const kernel> make_model_kernel(const model_spec& spec);

}  // namespace offload
