#pragma once
// The TorchScript executor (platform pytorch_libtorch): the module offload_torchscript.so, built
// when CMake finds libtorch and loaded (dlopen) only when a repository holds a TorchScript model.

#include <offload/kernel.hpp>
#include <offload/models.hpp>

#include <memory>

namespace offload::detail {

/// The kernel that runs `m` with libtorch, from the module; model_repository_error when its file
/// does not load or the module cannot be loaded (this build has no libtorch, or it is missing).
std::shared_ptr<const kernel> make_torchscript_kernel(const repository_model& m);
/// Whether the module loads (and so TorchScript models can run).
bool torchscript_available() noexcept;

}  // namespace offload::detail

/// The module's entry point.
extern "C" void offload_torchscript_kernel(const offload::repository_model& m,
                                           std::shared_ptr<const offload::kernel>& out);
