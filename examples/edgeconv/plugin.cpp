// The EdgeConv kernel as a plugin: offload-run --plugin edgeconv_plugin.so (or load_plugin).
#include <offload/plugin.hpp>

#include "edgeconv.hpp"

namespace {
void register_kernels(offload::kernel_registry& r) {
  r.add(edgeconv::kernel());
}
}  // namespace

OFFLOAD_PLUGIN(register_kernels)
