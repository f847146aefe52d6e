#pragma once
/// \file
/// Element types of products, as they travel on the wire.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>
#include <type_traits>

namespace offload {

/// The element type of a product. The numeric values are part of the wire format.
enum class dtype : std::uint8_t { f32 = 1, f64 = 2, i32 = 3, i64 = 4, u8 = 5 };

/// Size in bytes of one element, or 0 for a value that is not a known dtype.
constexpr std::size_t dtype_size(dtype t) noexcept {
  switch (t) {
    case dtype::f32: return 4;
    case dtype::f64: return 8;
    case dtype::i32: return 4;
    case dtype::i64: return 8;
    case dtype::u8: return 1;
  }
  return 0;
}

/// True when `raw` is the wire value of a known dtype.
constexpr bool is_valid_dtype(std::uint8_t raw) noexcept {
  return raw >= 1 && raw <= 5;
}

/// "f32", "f64", "i32", "i64", "u8", or "?" for an unknown value.
constexpr std::string_view dtype_name(dtype t) noexcept {
  switch (t) {
    case dtype::f32: return "f32";
    case dtype::f64: return "f64";
    case dtype::i32: return "i32";
    case dtype::i64: return "i64";
    case dtype::u8: return "u8";
  }
  return "?";
}

/// Parses "f32" etc.; nullopt for anything else.
constexpr std::optional<dtype> parse_dtype(std::string_view s) noexcept {
  for (auto t : {dtype::f32, dtype::f64, dtype::i32, dtype::i64, dtype::u8})
    if (dtype_name(t) == s) return t;
  return std::nullopt;
}

/// The dtype of a C++ element type: dtype_of<float> == dtype::f32.
template <class T> struct dtype_traits;
template <> struct dtype_traits<float> { static constexpr dtype value = dtype::f32; };
template <> struct dtype_traits<double> { static constexpr dtype value = dtype::f64; };
template <> struct dtype_traits<std::int32_t> { static constexpr dtype value = dtype::i32; };
template <> struct dtype_traits<std::int64_t> { static constexpr dtype value = dtype::i64; };
template <> struct dtype_traits<std::uint8_t> { static constexpr dtype value = dtype::u8; };
template <class T> inline constexpr dtype dtype_of = dtype_traits<std::remove_cv_t<T>>::value;

}  // namespace offload
