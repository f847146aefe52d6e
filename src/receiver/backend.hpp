#pragma once
// The library's backends (offload/backend.hpp): CPU, and CUDA in a build with CUDA.

#include <offload/backend.hpp>
#include <offload/receiver.hpp>

#include <memory>
#include <string>

namespace offload::detail {

/// The backend of `kind` (offload/receiver.hpp): cuda throws std::invalid_argument with the
/// reason where it cannot run; automatic falls back to cpu with the reason in `note`. The cuda
/// backend uses `device`, or when it is negative the device `local_rank` modulo the visible devices.
std::unique_ptr<backend> make_backend(backend_kind kind, int device, int local_rank, std::string& note);

}  // namespace offload::detail
