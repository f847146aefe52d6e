#pragma once
// Backends run a kernel on the inputs of one request and produce the reply message.

#include <offload/kernel.hpp>
#include <offload/wire.hpp>

#include "../common/buffer_pool.hpp"

#include <memory>
#include <string>
#include <string_view>

namespace offload::detail {

class backend {
 public:
  virtual ~backend() = default;
  virtual std::string_view name() const noexcept = 0;
  /// The reply (kind reply, the request's id) with `k`'s outputs. Throws input_error when the
  /// kernel rejects its inputs, any other exception when it fails.
  virtual buffer run(const kernel& k, const message& request, buffer_pool& pool) = 0;
};

/// "cpu"; throws std::invalid_argument with the reason for any other name.
std::unique_ptr<backend> make_backend(const std::string& name);

}  // namespace offload::detail
