#pragma once
/// \file
/// Products: named, typed, contiguous arrays — the unit that crosses the wire.

#include <offload/buffer.hpp>
#include <offload/dtype.hpp>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace offload {

/// Thrown when a product is missing, has the wrong dtype or the wrong length.
class input_error : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

/// Thrown when an output is read or written as another dtype, or with another count, than its
/// spec says: a result read as the wrong type (result::get), or a kernel that breaks its own
/// output specs (message_writer::payload_as; a receiver answers that `bad_output`).
class output_error : public std::logic_error {
 public:
  using std::logic_error::logic_error;
};

/// A product's shape: its dims, row-major, each at least 0, their product its element count.
/// Empty means flat: one dimension of the count (what products without a shape are).
using dims_t = std::vector<std::int64_t>;

/// Elements of a shape, or nullopt when a dim is negative or the product passes 2^62.
std::optional<std::uint64_t> shape_elements(std::span<const std::int64_t> dims) noexcept;
/// "[2,3,4]"; "[]" for no dims.
std::string shape_text(std::span<const std::int64_t> dims);
/// Why `dims` cannot be the shape of product `name` of `count` elements (a negative dim, more
/// than max_rank dims, or their product not the count); empty when they can (empty dims can).
std::string shape_problem(std::string_view name, std::span<const std::int64_t> dims, std::uint64_t count);
/// The most dims a product may have (the wire format's limit).
inline constexpr std::size_t max_rank = 8;

namespace detail {
/// The `count` elements at `data` as `T` (const or not); throws input_error naming product
/// `name` when `T` is not `type`.
template <class T, class Byte>
std::span<T> elements_as(std::string_view name, dtype type, std::uint64_t count, Byte* data) {
  if (dtype_of<std::remove_const_t<T>> != type)
    throw input_error("product '" + std::string(name) + "' is " + std::string(dtype_name(type)) + ", not " +
                      std::string(dtype_name(dtype_of<std::remove_const_t<T>>)));
  return {reinterpret_cast<T*>(data), static_cast<std::size_t>(count)};
}
}  // namespace detail

/// Name, dtype, element count and shape of a product, without data.
struct product_spec {
  std::string name;
  dtype type = dtype::u8;
  std::uint64_t count = 0;
  dims_t dims = {};  ///< empty: flat

  std::uint64_t size_bytes() const noexcept { return count * dtype_size(type); }
  /// The dims, or one dim of `count` when flat.
  dims_t shape() const { return dims.empty() ? dims_t{std::int64_t(count)} : dims; }
  friend bool operator==(const product_spec&, const product_spec&) = default;
};

/// A non-owning, read-only view of one product. Whoever made the view owns the bytes
/// (a received message, an owning `product`) and must keep them alive while it is used.
struct product_view {
  std::string_view name;
  dtype type = dtype::u8;
  std::uint64_t count = 0;
  const std::byte* data = nullptr;
  std::span<const std::int64_t> dims = {};  ///< empty: flat (owned by whoever owns the bytes)

  std::uint64_t size_bytes() const noexcept { return count * dtype_size(type); }
  /// The dims, or one dim of `count` when flat.
  dims_t shape() const { return dims.empty() ? dims_t{std::int64_t(count)} : dims_t(dims.begin(), dims.end()); }
  product_spec spec() const { return {std::string(name), type, count, dims_t(dims.begin(), dims.end())}; }

  /// The elements as `T`; throws input_error when `T` is not this product's dtype.
  template <class T> std::span<const T> as() const { return detail::elements_as<const T>(name, type, count, data); }
};

/// An owning product: its name, dtype, bytes and shape. Build one with `make`.
struct product {
  std::string name;
  dtype type = dtype::u8;
  std::uint64_t count = 0;
  std::vector<std::byte> bytes;
  dims_t dims = {};  ///< empty: flat; set with reshape

  /// A flat product holding `values`; with `dims`, shaped (input_error when their product is
  /// not the number of values).
  template <class T> static product make(std::string name, std::span<const T> values, dims_t dims = {}) {
    product p{std::move(name), dtype_of<T>, values.size(), std::vector<std::byte>(values.size_bytes()), {}};
    if (!values.empty()) std::memcpy(p.bytes.data(), values.data(), values.size_bytes());
    p.reshape(std::move(dims));
    return p;
  }
  template <class T> static product make(std::string name, const std::vector<T>& values, dims_t dims = {}) {
    return make(std::move(name), std::span<const T>(values), std::move(dims));
  }
  /// `count` elements of `type`, all bytes zero, to fill with as<T>().
  static product zeros(std::string name, dtype type, std::uint64_t count) {
    return {
        std::move(name), type, count, std::vector<std::byte>(static_cast<std::size_t>(count * dtype_size(type))), {}};
  }

  /// The elements as `T`, to fill; throws input_error when `T` is not this product's dtype.
  template <class T> std::span<T> as() { return detail::elements_as<T>(name, type, count, bytes.data()); }
  /// Gives the product a shape (empty: flat); input_error when it does not fit the count.
  void reshape(dims_t new_dims) {
    if (auto problem = shape_problem(name, new_dims, count); !problem.empty()) throw input_error(problem);
    dims = std::move(new_dims);
  }

  product_spec spec() const { return {name, type, count, dims}; }
  product_view view() const noexcept { return {name, type, count, bytes.data(), dims}; }
};

/// A product whose bytes are a pooled buffer (transmitter::make_product): written in place,
/// submitted without a copy (shared_products::adopt), its block back in the pool when the last
/// owner (the event, the request, whichever is later) drops it.
struct pooled_product {
  std::string name;
  dtype type = dtype::u8;
  std::uint64_t count = 0;
  buffer bytes;      ///< count * dtype_size(type) bytes
  dims_t dims = {};  ///< empty: flat; set with reshape

  /// The elements as `T`, to fill; throws input_error when `T` is not this product's dtype.
  template <class T> std::span<T> as() { return detail::elements_as<T>(name, type, count, bytes.data()); }
  /// Gives the product a shape (empty: flat); input_error when it does not fit the count.
  void reshape(dims_t new_dims) {
    if (auto problem = shape_problem(name, new_dims, count); !problem.empty()) throw input_error(problem);
    dims = std::move(new_dims);
  }
  product_spec spec() const { return {name, type, count, dims}; }
  product_view view() const noexcept { return {name, type, count, bytes.data(), dims}; }
};

/// An ordered list of product views with lookup by name. Does not own the bytes.
class product_views {
 public:
  product_views() = default;
  explicit product_views(std::vector<product_view> items) : m_items(std::move(items)) {}
  explicit product_views(const std::vector<product>& owned);
  explicit product_views(const std::vector<pooled_product>& owned);

  std::size_t size() const noexcept { return m_items.size(); }
  bool empty() const noexcept { return m_items.empty(); }
  const product_view& operator[](std::size_t i) const { return m_items[i]; }
  auto begin() const noexcept { return m_items.begin(); }
  auto end() const noexcept { return m_items.end(); }

  /// The product called `name`, or nullptr.
  const product_view* find(std::string_view name) const noexcept;
  /// The product called `name`; throws input_error when it is absent.
  const product_view& at(std::string_view name) const;
  /// The elements of product `name` as `T`; throws input_error when it is absent or not a `T`.
  template <class T> std::span<const T> get(std::string_view name) const { return at(name).template as<T>(); }

 private:
  std::vector<product_view> m_items;
};

/// Input products whose memory a transmitter may share instead of copying (transmitter::submit):
/// `views` point into memory that `owner` keeps alive, unchanged, for as long as the owner lives.
struct shared_products {
  product_views views;
  std::shared_ptr<const void> owner;

  /// Takes `products` over: the owner is them.
  static shared_products adopt(std::vector<product> products);
  static shared_products adopt(std::vector<pooled_product> products);
};

/// Compares two product lists: same names, dtypes, counts and shapes (where both state one: a
/// flat product matches any shape of its count), in order, and values equal within a relative tolerance (floats,
/// f16 and bf16 as float: |a-b| <= rel*max(|a|,|b|) + abs; integers and bool: exactly).
/// Returns an empty string when they agree, otherwise a description of the first difference.
std::string compare_products(const product_views& expected, const product_views& actual, double rel_tolerance = 0.0,
                             double abs_tolerance = 0.0);

}  // namespace offload
