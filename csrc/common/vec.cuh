// V consecutive elements moved as one 16-byte access (V = 16 / sizeof(T)) or as one element (V = 1):
// the vector type of the row kernels (norms, rope), in the portable dialect. No torch headers.
#pragma once

#include "simt/dialect.cuh"

namespace lavin_fast {

template <typename T, int V>
struct alignas(sizeof(T) * V) Vec {
  T e[V];
};

template <typename T, int V>
LF_DEVICE Vec<T, V> load_vec(const T* ptr) {
  if constexpr (V == 1) {
    return Vec<T, 1>{{*ptr}};
  } else {
    static_assert(sizeof(T) * V == 16, "vectors are 16 bytes or one element");
    return lf::bit_cast<Vec<T, V>>(lf::load16(ptr));
  }
}

template <typename T, int V>
LF_DEVICE void store_vec(T* ptr, const Vec<T, V>& v) {
  if constexpr (V == 1) {
    *ptr = v.e[0];
  } else {
    lf::store16(ptr, lf::bit_cast<uint4>(v));
  }
}

}  // namespace lavin_fast
