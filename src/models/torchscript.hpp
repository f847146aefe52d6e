#pragma once
// The TorchScript executor (platform pytorch_libtorch), built when CMake finds libtorch.

#include <offload/kernel.hpp>
#include <offload/models.hpp>

#include <memory>

namespace offload::detail {

/// The kernel that runs `m` with libtorch; model_repository_error when its file does not load
/// or this build has no libtorch.
std::shared_ptr<const kernel> make_torchscript_kernel(const repository_model& m);
bool torchscript_available() noexcept;

}  // namespace offload::detail
