#pragma once
/// \file
/// Element types of products, as they travel on the wire.

#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>
#include <type_traits>

namespace offload {

/// The element type of a product. The numeric values are part of the wire format
/// (docs/protocol.md, section 1.3).
enum class dtype : std::uint8_t {
  f32 = 1,
  f64 = 2,
  i32 = 3,
  i64 = 4,
  u8 = 5,
  boolean = 6,  ///< one byte, 0 or 1 (C++ bool)
  i8 = 7,
  i16 = 8,
  u16 = 9,
  u32 = 10,
  u64 = 11,
  f16 = 12,   ///< IEEE 754 binary16 (offload::float16)
  bf16 = 13,  ///< bfloat16: the top half of an f32 (offload::bfloat16)
};

/// Every dtype, in wire-value order.
inline constexpr std::array<dtype, 13> all_dtypes{dtype::f32,     dtype::f64, dtype::i32, dtype::i64, dtype::u8,
                                                  dtype::boolean, dtype::i8,  dtype::i16, dtype::u16, dtype::u32,
                                                  dtype::u64,     dtype::f16, dtype::bf16};

/// Size in bytes of one element, or 0 for a value that is not a known dtype.
constexpr std::size_t dtype_size(dtype t) noexcept {
  switch (t) {
    case dtype::f32: return 4;
    case dtype::f64: return 8;
    case dtype::i32: return 4;
    case dtype::i64: return 8;
    case dtype::u8: return 1;
    case dtype::boolean: return 1;
    case dtype::i8: return 1;
    case dtype::i16: return 2;
    case dtype::u16: return 2;
    case dtype::u32: return 4;
    case dtype::u64: return 8;
    case dtype::f16: return 2;
    case dtype::bf16: return 2;
  }
  return 0;
}

/// True when `raw` is the wire value of a known dtype.
constexpr bool is_valid_dtype(std::uint8_t raw) noexcept {
  return raw >= 1 && raw <= 13;
}

/// "f32", "f64", "i32", "i64", "u8", "bool", "i8", "i16", "u16", "u32", "u64", "f16", "bf16";
/// "?" for an unknown value.
constexpr std::string_view dtype_name(dtype t) noexcept {
  switch (t) {
    case dtype::f32: return "f32";
    case dtype::f64: return "f64";
    case dtype::i32: return "i32";
    case dtype::i64: return "i64";
    case dtype::u8: return "u8";
    case dtype::boolean: return "bool";
    case dtype::i8: return "i8";
    case dtype::i16: return "i16";
    case dtype::u16: return "u16";
    case dtype::u32: return "u32";
    case dtype::u64: return "u64";
    case dtype::f16: return "f16";
    case dtype::bf16: return "bf16";
  }
  return "?";
}

/// Parses "f32" etc.; nullopt for anything else.
constexpr std::optional<dtype> parse_dtype(std::string_view s) noexcept {
  for (auto t : all_dtypes)
    if (dtype_name(t) == s) return t;
  return std::nullopt;
}

/// Whether elements of `t` are floating point (f32, f64, f16, bf16).
constexpr bool is_floating(dtype t) noexcept {
  return t == dtype::f32 || t == dtype::f64 || t == dtype::f16 || t == dtype::bf16;
}

/// An IEEE 754 binary16 value as it is stored (C++20 has no such type): its 16 bits, and
/// conversions to and from float (round to nearest even; NaN stays NaN, overflow gives ±inf).
struct float16 {
  std::uint16_t bits = 0;

  static float16 from_float(float f) noexcept {
    const std::uint32_t x = std::bit_cast<std::uint32_t>(f);
    const std::uint16_t sign = static_cast<std::uint16_t>((x >> 16) & 0x8000u);
    const std::uint32_t abs = x & 0x7fffffffu;
    if (abs > 0x7f800000u) return {static_cast<std::uint16_t>(sign | 0x7e00u)};   // NaN
    if (abs >= 0x477ff000u) return {static_cast<std::uint16_t>(sign | 0x7c00u)};  // ≥ 65520: inf
    if (abs < 0x38800000u) {  // below 2^-14: a subnormal half (or zero)
      // abs as a float is m * 2^-149 ... scale to units of 2^-24 with rounding to nearest even.
      const std::uint32_t e = abs >> 23;
      if (e < 102) return {sign};  // below 2^-25: rounds to zero
      const std::uint32_t m = (abs & 0x7fffffu) | 0x800000u;
      const std::uint32_t shift = 126 - e;  // 14..24
      std::uint32_t h = m >> shift;
      const std::uint32_t rest = m & ((1u << shift) - 1), half = 1u << (shift - 1);
      if (rest > half || (rest == half && (h & 1u))) ++h;
      return {static_cast<std::uint16_t>(sign | h)};
    }
    std::uint32_t h = ((abs >> 13) - (112u << 10));  // rebias exponent 127 -> 15
    const std::uint32_t rest = abs & 0x1fffu;
    if (rest > 0x1000u || (rest == 0x1000u && (h & 1u))) ++h;
    return {static_cast<std::uint16_t>(sign | h)};
  }
  float to_float() const noexcept {
    const std::uint32_t sign = std::uint32_t(bits & 0x8000u) << 16;
    const std::uint32_t e = (bits >> 10) & 0x1fu, m = bits & 0x3ffu;
    if (e == 0x1f) return std::bit_cast<float>(sign | 0x7f800000u | (m << 13));  // inf, NaN
    if (e == 0) {                                                                // zero or subnormal: m * 2^-24
      const float v = float(m) * 0x1p-24f;
      return sign != 0 ? -v : v;
    }
    return std::bit_cast<float>(sign | ((e + 112u) << 23) | (m << 13));
  }
  friend bool operator==(float16, float16) = default;
};

/// A bfloat16 value as it is stored: the top 16 bits of an f32, and conversions (round to
/// nearest even; NaN stays NaN).
struct bfloat16 {
  std::uint16_t bits = 0;

  static bfloat16 from_float(float f) noexcept {
    const std::uint32_t x = std::bit_cast<std::uint32_t>(f);
    if ((x & 0x7fffffffu) > 0x7f800000u) return {static_cast<std::uint16_t>((x >> 16) | 0x40u)};  // NaN
    return {static_cast<std::uint16_t>((x + 0x7fffu + ((x >> 16) & 1u)) >> 16)};
  }
  float to_float() const noexcept { return std::bit_cast<float>(std::uint32_t(bits) << 16); }
  friend bool operator==(bfloat16, bfloat16) = default;
};

/// The dtype of a C++ element type: dtype_of<float> == dtype::f32.
template <class T> struct dtype_traits;
template <> struct dtype_traits<float> { static constexpr dtype value = dtype::f32; };
template <> struct dtype_traits<double> { static constexpr dtype value = dtype::f64; };
template <> struct dtype_traits<std::int32_t> { static constexpr dtype value = dtype::i32; };
template <> struct dtype_traits<std::int64_t> { static constexpr dtype value = dtype::i64; };
template <> struct dtype_traits<std::uint8_t> { static constexpr dtype value = dtype::u8; };
template <> struct dtype_traits<bool> { static constexpr dtype value = dtype::boolean; };
template <> struct dtype_traits<std::int8_t> { static constexpr dtype value = dtype::i8; };
template <> struct dtype_traits<std::int16_t> { static constexpr dtype value = dtype::i16; };
template <> struct dtype_traits<std::uint16_t> { static constexpr dtype value = dtype::u16; };
template <> struct dtype_traits<std::uint32_t> { static constexpr dtype value = dtype::u32; };
template <> struct dtype_traits<std::uint64_t> { static constexpr dtype value = dtype::u64; };
template <> struct dtype_traits<float16> { static constexpr dtype value = dtype::f16; };
template <> struct dtype_traits<bfloat16> { static constexpr dtype value = dtype::bf16; };
template <class T> inline constexpr dtype dtype_of = dtype_traits<std::remove_cv_t<T>>::value;

static_assert(sizeof(bool) == 1 && sizeof(float16) == 2 && sizeof(bfloat16) == 2);

}  // namespace offload
