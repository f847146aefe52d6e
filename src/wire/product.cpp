#include <offload/product.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <sstream>

namespace offload {

std::optional<std::uint64_t> shape_elements(std::span<const std::int64_t> dims) noexcept {
  std::uint64_t n = 1;
  for (auto d : dims) {
    if (d < 0 || (d != 0 && n > (std::uint64_t{1} << 62) / std::uint64_t(d))) return std::nullopt;
    n *= std::uint64_t(d);
  }
  return n;
}

std::string shape_text(std::span<const std::int64_t> dims) {
  std::string s = "[";
  for (std::size_t i = 0; i < dims.size(); ++i) {
    if (i > 0) s += ',';
    s += std::to_string(dims[i]);
  }
  return s + "]";
}

std::string shape_problem(std::string_view name, std::span<const std::int64_t> dims, std::uint64_t count) {
  if (dims.empty()) return {};
  std::string what = "product '" + std::string(name) + "': shape " + shape_text(dims);
  if (dims.size() > max_rank)
    return what + " has " + std::to_string(dims.size()) + " dims, at most " + std::to_string(max_rank);
  const auto n = shape_elements(dims);
  if (!n) return what + " has a negative dim or too many elements";
  if (*n != count) return what + " holds " + std::to_string(*n) + " elements, the product has " + std::to_string(count);
  return {};
}

product_views::product_views(const std::vector<product>& owned) {
  m_items.reserve(owned.size());
  for (const auto& p : owned) m_items.push_back(p.view());
}

product_views::product_views(const std::vector<pooled_product>& owned) {
  m_items.reserve(owned.size());
  for (const auto& p : owned) m_items.push_back(p.view());
}

namespace {
template <class Product> shared_products adopt_all(std::vector<Product> products) {
  auto owned = std::make_shared<const std::vector<Product>>(std::move(products));
  return {product_views(*owned), owned};
}
}  // namespace

shared_products shared_products::adopt(std::vector<product> products) {
  return adopt_all(std::move(products));
}

shared_products shared_products::adopt(std::vector<pooled_product> products) {
  return adopt_all(std::move(products));
}

const product_view* product_views::find(std::string_view name) const noexcept {
  for (const auto& p : m_items)
    if (p.name == name) return &p;
  return nullptr;
}

const product_view& product_views::at(std::string_view name) const {
  if (const auto* p = find(name)) return *p;
  std::string have;
  for (const auto& p : m_items) have += (have.empty() ? "" : ", ") + std::string(p.name);
  throw input_error("product '" + std::string(name) + "' is missing (have: " + (have.empty() ? "none" : have) + ")");
}

namespace {

/// An element as it compares: f16 and bf16 as float, the others as they are.
template <class T> auto comparable(T v) {
  if constexpr (std::is_same_v<T, float16> || std::is_same_v<T, bfloat16>)
    return v.to_float();
  else
    return v;
}

template <class T> std::string compare_values(const product_view& e, const product_view& a, double rel, double abs) {
  auto ev = e.as<T>();
  auto av = a.as<T>();
  for (std::size_t i = 0; i < ev.size(); ++i) {
    auto x = comparable(ev[i]);
    auto y = comparable(av[i]);
    bool same;
    if constexpr (std::is_floating_point_v<decltype(x)>) {
      if (std::isnan(x) || std::isnan(y))
        same = std::isnan(x) && std::isnan(y);
      else
        same = std::abs(double(x) - double(y)) <= rel * std::max(std::abs(double(x)), std::abs(double(y))) + abs;
    } else {
      same = x == y;
    }
    if (!same) {
      std::ostringstream os;
      os.precision(17);
      os << "product '" << e.name << "' element " << i << ": expected " << +x << ", got " << +y;
      return os.str();
    }
  }
  return {};
}

}  // namespace

std::string compare_products(const product_views& expected, const product_views& actual, double rel, double abs) {
  if (expected.size() != actual.size())
    return "expected " + std::to_string(expected.size()) + " products, got " + std::to_string(actual.size());
  for (std::size_t i = 0; i < expected.size(); ++i) {
    const auto& e = expected[i];
    const auto& a = actual[i];
    if (e.name != a.name)
      return "product " + std::to_string(i) + ": expected name '" + std::string(e.name) + "', got '" +
             std::string(a.name) + "'";
    if (e.type != a.type)
      return "product '" + std::string(e.name) + "': expected dtype " + std::string(dtype_name(e.type)) + ", got " +
             std::string(dtype_name(a.type));
    if (e.count != a.count)
      return "product '" + std::string(e.name) + "': expected " + std::to_string(e.count) + " elements, got " +
             std::to_string(a.count);
    if (!e.dims.empty() && !a.dims.empty() && e.shape() != a.shape())
      return "product '" + std::string(e.name) + "': expected shape " + shape_text(e.shape()) + ", got " +
             shape_text(a.shape());
    std::string diff;
    switch (e.type) {
      case dtype::f32: diff = compare_values<float>(e, a, rel, abs); break;
      case dtype::f64: diff = compare_values<double>(e, a, rel, abs); break;
      case dtype::i32: diff = compare_values<std::int32_t>(e, a, rel, abs); break;
      case dtype::i64: diff = compare_values<std::int64_t>(e, a, rel, abs); break;
      case dtype::u8: diff = compare_values<std::uint8_t>(e, a, rel, abs); break;
      case dtype::boolean: {  // as bytes: a byte other than 0 or 1 is not read as a bool
        auto eb = e, ab = a;
        eb.type = ab.type = dtype::u8;
        diff = compare_values<std::uint8_t>(eb, ab, rel, abs);
        break;
      }
      case dtype::i8: diff = compare_values<std::int8_t>(e, a, rel, abs); break;
      case dtype::i16: diff = compare_values<std::int16_t>(e, a, rel, abs); break;
      case dtype::u16: diff = compare_values<std::uint16_t>(e, a, rel, abs); break;
      case dtype::u32: diff = compare_values<std::uint32_t>(e, a, rel, abs); break;
      case dtype::u64: diff = compare_values<std::uint64_t>(e, a, rel, abs); break;
      case dtype::f16: diff = compare_values<float16>(e, a, rel, abs); break;
      case dtype::bf16: diff = compare_values<bfloat16>(e, a, rel, abs); break;
    }
    if (!diff.empty()) return diff;
  }
  return {};
}

}  // namespace offload
