// Loading kernel plugins (offload/plugin.hpp) with dlopen.
#include <offload/plugin.hpp>

#include <dlfcn.h>

#include <filesystem>

namespace offload {

namespace {
using api_version_fn = std::uint32_t (*)();
using register_fn = void (*)(kernel_registry&);

template <class F> F entry_point(void* lib, const char* symbol, const std::string& path) {
  dlerror();
  void* f = dlsym(lib, symbol);
  if (f == nullptr) {
    const char* why = dlerror();
    throw plugin_error("plugin " + path + ": no entry point " + symbol + " (" + (why ? why : "null symbol") +
                       "); define it with OFFLOAD_PLUGIN in the plugin");
  }
  return reinterpret_cast<F>(f);
}
}  // namespace

void load_plugin(kernel_registry& into, const std::string& path) {
  // A bare file name that exists here means this file, not a search of the library path.
  const bool bare = path.find('/') == std::string::npos;
  const std::string file = bare && std::filesystem::exists(path) ? "./" + path : path;
  // RTLD_LOCAL: plugins do not see each other's symbols; never closed (see plugin.hpp).
  void* lib = dlopen(file.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (lib == nullptr) {
    const char* why = dlerror();
    throw plugin_error("plugin " + path + " cannot be loaded: " + (why ? why : "dlopen failed"));
  }
  const auto version = entry_point<api_version_fn>(lib, "offload_plugin_api_version", path)();
  if (version != OFFLOAD_PLUGIN_API_VERSION)
    throw plugin_error("plugin " + path + " was built for plugin API version " + std::to_string(version) +
                       "; this library has version " + std::to_string(OFFLOAD_PLUGIN_API_VERSION) +
                       " (rebuild the plugin against this mpi-offload)");
  const auto register_kernels = entry_point<register_fn>(lib, "offload_plugin_register", path);
  kernel_registry mine;
  try {
    register_kernels(mine);
  } catch (const std::exception& e) {
    throw plugin_error("plugin " + path + ": registering its kernels failed: " + e.what());
  } catch (...) {
    throw plugin_error("plugin " + path + ": registering its kernels threw a non-standard exception");
  }
  if (mine.size() == 0) throw plugin_error("plugin " + path + " registered no kernel");
  kernel_registry merged = into;
  try {
    merged.add(mine, "plugin " + path);
  } catch (const std::invalid_argument& e) {
    throw plugin_error("plugin " + path + ": " + e.what());
  }
  into = std::move(merged);
}

}  // namespace offload
