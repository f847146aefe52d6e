#include <offload/kernel.hpp>

#include "builtin.hpp"

#include <algorithm>
#include <set>
#include <stdexcept>

namespace offload {

void kernel::run_cpu_batch(std::span<const product_views* const> ins, std::span<message_writer* const> outs) const {
  for (std::size_t i = 0; i < ins.size(); ++i) run_cpu(*ins[i], *outs[i]);
}

message run_cpu(const kernel& k, const product_views& in, const message_info& info,
                const std::function<buffer(std::size_t)>& allocate) {
  auto specs = k.output_specs(in);
  message_writer out(info, specs, allocate ? allocate(message_writer::size_for(specs)) : buffer{});
  k.run_cpu(in, out);
  return std::move(out).finish_message();
}

std::string compare_with_cpu(const kernel& k, const product_views& inputs, const product_views& outputs,
                             double rel_tolerance, double abs_tolerance) {
  return compare_products(run_cpu(k, inputs, {}).products(), outputs, rel_tolerance, abs_tolerance);
}

kernel_registry::kernel_registry(std::vector<const kernel*> kernels) : m_kernels(std::move(kernels)) {
  std::sort(m_kernels.begin(), m_kernels.end(), [](const kernel* a, const kernel* b) { return a->name() < b->name(); });
}

const kernel_registry& kernel_registry::builtin() {
  static const kernel_registry all(
      {&kernels::clustering_kernel(), &kernels::echo_kernel(), &kernels::mlp_kernel(), &kernels::synthetic_kernel()});
  return all;
}

kernel_registry kernel_registry::subset(const std::vector<std::string>& names) const {
  std::vector<const kernel*> picked;
  std::set<std::string> seen;
  for (const auto& n : names) {
    const kernel* k = find(n);
    if (k == nullptr) {
      std::string known;
      for (const auto& m : this->names()) known += (known.empty() ? "" : ", ") + m;
      throw std::invalid_argument("unknown kernel '" + n + "' (known: " + known + ")");
    }
    if (!seen.insert(n).second) throw std::invalid_argument("kernel '" + n + "' is named twice");
    picked.push_back(k);
  }
  return kernel_registry(std::move(picked));
}

const kernel* kernel_registry::find(std::string_view name) const noexcept {
  for (const kernel* k : m_kernels)
    if (k->name() == name) return k;
  return nullptr;
}

const kernel* kernel_registry::by_id(std::uint32_t id) const noexcept {
  return id < m_kernels.size() ? m_kernels[id] : nullptr;
}

std::optional<std::uint32_t> kernel_registry::id_of(std::string_view name) const noexcept {
  for (std::size_t i = 0; i < m_kernels.size(); ++i)
    if (m_kernels[i]->name() == name) return static_cast<std::uint32_t>(i);
  return std::nullopt;
}

std::vector<std::string> kernel_registry::names() const {
  std::vector<std::string> out;
  for (const kernel* k : m_kernels) out.emplace_back(k->name());
  return out;
}

std::string kernel_registry::signature() const {
  std::string s;
  for (const kernel* k : m_kernels) (s += k->name()) += '\n';
  return s;
}

}  // namespace offload
