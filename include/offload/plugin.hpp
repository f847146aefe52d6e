#pragma once
/// \file
/// Kernel plugins: shared libraries that add kernels to a registry at run time
/// (`offload-run --plugin PATH.so`, `offload-serve --plugin PATH.so`, or load_plugin).
///
/// A plugin is built with the same compiler family and C++ standard library as the program
/// that loads it (kernels are C++ objects), links mpi_offload::kernels, and defines its entry
/// points with OFFLOAD_PLUGIN in exactly one of its source files:
///
///     void register_kernels(offload::kernel_registry& r) { r.add(std::make_shared<my_kernel>()); }
///     OFFLOAD_PLUGIN(register_kernels)
///
/// The loader checks the plugin's API version before it calls anything else. A loaded plugin
/// stays loaded until the process ends (its kernels may be referenced from any thread).

#include <offload/kernel.hpp>

#include <cstdint>
#include <stdexcept>
#include <string>

/// The plugin interface this header describes. It changes whenever offload::kernel,
/// offload::kernel_registry or the entry points change incompatibly.
#define OFFLOAD_PLUGIN_API_VERSION 1

namespace offload {

/// A plugin could not be loaded; the text names the file and what was wrong.
class plugin_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Loads the plugin at `path` (a bare file name that is not in the working directory is looked
/// for as dlopen does, along LD_LIBRARY_PATH) and adds its kernels to `into`, each with the origin
/// "plugin PATH". Throws plugin_error, naming the file, when the library cannot be loaded, an
/// entry point is missing, its API version is not this library's, its registration throws, or
/// one of its kernels has the name of a kernel `into` already has; `into` is then unchanged.
void load_plugin(kernel_registry& into, const std::string& path);

}  // namespace offload

/// Defines a plugin's entry points: `register_fn` is a function void(offload::kernel_registry&)
/// that adds the plugin's kernels.
#define OFFLOAD_PLUGIN(register_fn)                                                                             \
  extern "C" __attribute__((visibility("default"))) std::uint32_t offload_plugin_api_version() {                \
    return OFFLOAD_PLUGIN_API_VERSION;                                                                          \
  }                                                                                                             \
  extern "C" __attribute__((visibility("default"))) void offload_plugin_register(offload::kernel_registry& r) { \
    register_fn(r);                                                                                             \
  }
