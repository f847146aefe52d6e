#include <cstring>
#include <offload/kernel.hpp>

#include "builtin.hpp"

#include <algorithm>
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

std::vector<pooled_product> kernel::make_inputs(const input_params& params, const product_maker& make) const {
  std::vector<pooled_product> out;
  for (const auto& p : make_inputs(params)) {
    auto q = make(p.name, p.type, p.count);
    q.dims = p.dims;
    if (!p.bytes.empty()) std::memcpy(q.bytes.data(), p.bytes.data(), p.bytes.size());
    out.push_back(std::move(q));
  }
  return out;
}

kernel_cost kernel::cost(const product_views&) const {
  return {};
}

std::uint64_t kernel::items(const product_views&) const {
  return 1;
}

bool kernel::emulate_outputs(const product_views&, message_writer&) const {
  return false;
}

std::vector<std::pair<std::size_t, std::size_t>> kernel::in_place(const product_views&) const {
  return {};
}

const device_product& cuda_launch::input(std::string_view name) const {
  const product_view& v = host_in.at(name);
  return in[static_cast<std::size_t>(&v - &host_in[0])];
}

std::size_t cuda_implementation::scratch_bytes(const product_views&) const {
  return 0;
}

namespace {
/// Empty when `text` can stand in a signature line (printable, no space or '@'), else why not.
std::string token_problem(std::string_view what, std::string_view text) {
  if (text.empty()) return std::string(what) + " is empty";
  if (text.size() > 255) return std::string(what) + " is longer than 255 characters";
  for (unsigned char c : text)
    if (c < 0x21 || c > 0x7e || c == '@')
      return std::string(what) + " '" + std::string(text) +
             "' has a character other than printable ASCII without spaces and '@'";
  return {};
}
}  // namespace

kernel_registry& kernel_registry::add(std::shared_ptr<const kernel> k, std::string origin) {
  if (!k) throw std::invalid_argument("kernel from " + origin + " is null");
  const auto name = k->name();
  if (auto why = token_problem("kernel name", name); !why.empty())
    throw std::invalid_argument(why + " (from " + origin + ")");
  if (auto why = token_problem("version of kernel '" + std::string(name) + "'", k->version()); !why.empty())
    throw std::invalid_argument(why + " (from " + origin + ")");
  auto at = std::lower_bound(m_entries.begin(), m_entries.end(), name,
                             [](const entry& e, std::string_view n) { return e.k->name() < n; });
  if (at != m_entries.end() && at->k->name() == name)
    throw std::invalid_argument("kernel '" + std::string(name) + "' from " + origin + " is already registered (from " +
                                at->origin + ")");
  m_entries.insert(at, entry{std::move(k), std::move(origin)});
  return *this;
}

kernel_registry& kernel_registry::add(const kernel& k, std::string origin) {
  // Not owned: an empty owner with the kernel's address.
  return add(std::shared_ptr<const kernel>(std::shared_ptr<const kernel>(), &k), std::move(origin));
}

kernel_registry& kernel_registry::add(const kernel_registry& other, const std::string& origin) {
  for (const auto& e : other.m_entries) add(e.k, origin.empty() ? e.origin : origin);
  return *this;
}

const kernel_registry& kernel_registry::builtin() {
  static const kernel_registry all = [] {
    kernel_registry r;
    for (const kernel* k :
         {&kernels::clustering_kernel(), &kernels::echo_kernel(), &kernels::mlp_kernel(), &kernels::synthetic_kernel()})
      r.add(*k, "built in");
    return r;
  }();
  return all;
}

kernel_registry kernel_registry::subset(const std::vector<std::string>& names) const {
  kernel_registry picked;
  for (const auto& n : names) {
    auto at = std::find_if(m_entries.begin(), m_entries.end(), [&](const entry& e) { return e.k->name() == n; });
    if (at == m_entries.end()) {
      std::string known;
      for (const auto& m : this->names()) known += (known.empty() ? "" : ", ") + m;
      throw std::invalid_argument("unknown kernel '" + n + "' (known: " + known + ")");
    }
    if (picked.find(n) != nullptr) throw std::invalid_argument("kernel '" + n + "' is named twice");
    picked.add(at->k, at->origin);
  }
  return picked;
}

const kernel* kernel_registry::find(std::string_view name) const noexcept {
  for (const auto& e : m_entries)
    if (e.k->name() == name) return e.k.get();
  return nullptr;
}

const kernel* kernel_registry::by_id(std::uint32_t id) const noexcept {
  return id < m_entries.size() ? m_entries[id].k.get() : nullptr;
}

std::optional<std::uint32_t> kernel_registry::id_of(std::string_view name) const noexcept {
  for (std::size_t i = 0; i < m_entries.size(); ++i)
    if (m_entries[i].k->name() == name) return static_cast<std::uint32_t>(i);
  return std::nullopt;
}

std::string kernel_registry::origin(std::string_view name) const {
  for (const auto& e : m_entries)
    if (e.k->name() == name) return e.origin;
  return {};
}

std::vector<std::string> kernel_registry::names() const {
  std::vector<std::string> out;
  for (const auto& e : m_entries) out.emplace_back(e.k->name());
  return out;
}

std::string kernel_registry::signature() const {
  std::string s;
  for (const auto& e : m_entries) ((s += e.k->name()) += '@').append(e.k->version()) += '\n';
  return s;
}

}  // namespace offload
