// Joining requests of row-wise kernels into one run, and splitting the outputs back.
#include <offload/kernel.hpp>

#include <algorithm>
#include <cstring>
#include <stdexcept>

namespace offload {

std::optional<std::vector<product>> join_inputs(const kernel& k, std::span<const product_views* const> ins) {
  const auto rule = k.batching();
  if (!rule.joinable || ins.empty()) return std::nullopt;
  const product_views& first = *ins[0];
  auto is_param = [&](std::string_view name) {
    return std::find(rule.params.begin(), rule.params.end(), name) != rule.params.end();
  };
  std::vector<product> joined;
  joined.reserve(first.size());
  for (std::size_t p = 0; p < first.size(); ++p) {
    const auto& head = first[p];
    std::uint64_t count = 0;
    for (const auto* in : ins) {
      if (in->size() != first.size()) return std::nullopt;
      const auto& v = (*in)[p];
      if (v.name != head.name || v.type != head.type) return std::nullopt;
      // Shaped products join along their first dim: the others must be equal.
      if (v.dims.size() != head.dims.size() ||
          (!head.dims.empty() && !std::equal(v.dims.begin() + 1, v.dims.end(), head.dims.begin() + 1)))
        return std::nullopt;
      if (is_param(head.name) &&
          (v.count != head.count ||
           (head.size_bytes() > 0 && std::memcmp(v.data, head.data, static_cast<std::size_t>(head.size_bytes())) != 0)))
        return std::nullopt;
      count += v.count;
    }
    if (is_param(head.name)) count = head.count;
    product out{std::string(head.name), head.type, count, std::vector<std::byte>(count * dtype_size(head.type)),
                dims_t(head.dims.begin(), head.dims.end())};
    if (!out.dims.empty() && !is_param(head.name)) {
      out.dims[0] = 0;
      for (const auto* in : ins) out.dims[0] += (*in)[p].dims[0];
    }
    std::size_t at = 0;
    for (const auto* in : ins) {
      const auto& v = (*in)[p];
      const auto n = static_cast<std::size_t>(v.size_bytes());
      if (n > 0) std::memcpy(out.bytes.data() + at, v.data, n);
      at += n;
      if (is_param(head.name)) break;
    }
    joined.push_back(std::move(out));
  }
  return joined;
}

void split_outputs(const product_views& joined, std::span<message_writer* const> outs) {
  for (std::size_t p = 0; p < joined.size(); ++p) {
    const auto& src = joined[p];
    std::uint64_t at = 0;
    for (auto* w : outs) {
      if (p >= w->product_count() || w->spec(p).name != src.name || w->spec(p).type != src.type)
        throw output_error("joined output '" + std::string(src.name) + "' does not match the requests' layout");
      auto dst = w->payload(p);
      if (at + dst.size() > src.size_bytes())
        throw output_error("joined output '" + std::string(src.name) + "' is shorter than the requests' outputs");
      if (!dst.empty()) std::memcpy(dst.data(), src.data + at, dst.size());
      at += dst.size();
    }
    if (at != src.size_bytes())
      throw output_error("joined output '" + std::string(src.name) + "' is longer than the requests' outputs");
  }
}

}  // namespace offload
