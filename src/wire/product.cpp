#include <offload/product.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <sstream>

namespace offload {

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

template <class T> std::string compare_values(const product_view& e, const product_view& a, double rel, double abs) {
  auto ev = e.as<T>();
  auto av = a.as<T>();
  for (std::size_t i = 0; i < ev.size(); ++i) {
    T x = ev[i];
    T y = av[i];
    bool same;
    if constexpr (std::is_floating_point_v<T>) {
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
    std::string diff;
    switch (e.type) {
      case dtype::f32: diff = compare_values<float>(e, a, rel, abs); break;
      case dtype::f64: diff = compare_values<double>(e, a, rel, abs); break;
      case dtype::i32: diff = compare_values<std::int32_t>(e, a, rel, abs); break;
      case dtype::i64: diff = compare_values<std::int64_t>(e, a, rel, abs); break;
      case dtype::u8: diff = compare_values<std::uint8_t>(e, a, rel, abs); break;
    }
    if (!diff.empty()) return diff;
  }
  return {};
}

}  // namespace offload
