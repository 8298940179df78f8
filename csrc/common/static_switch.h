// The switches that turn a run-time value into a template argument of the kernels: an element type
// (ElemType -> the caller's C++ type for it) and a value of a compile-time list (attention's head dims),
// each list spelled once and fed to every switch, instantiation and message. No torch headers: nvcc,
// g++ and the torch side all include it.
#pragma once

#include <string>
#include <type_traits>

#include "common/elem_type.h"

namespace lavin_fast {

template <typename T>
struct TypeTag {
  using type = T;
};

// r = f(TypeTag<T>{}) for T = Float, BFloat16 or Half as `type` says: the element types of the code
// compiling the call (device code: float, lf::bf16, lf::fp16; CPU kernels: c10's).
template <typename Float, typename BFloat16, typename Half, typename R, typename F>
R elem_type_switch(ElemType type, R fallback, F&& f) {
  switch (type) {
    case ElemType::kFloat32: return f(TypeTag<Float>{});
    case ElemType::kBFloat16: return f(TypeTag<BFloat16>{});
    case ElemType::kFloat16: return f(TypeTag<Half>{});
  }
  return fallback;
}

template <int... Vs>
struct IntList {
  static constexpr bool contains(int v) { return ((v == Vs) || ...); }
};

// r = f(std::integral_constant<int, V>{}) for the V of Vs equal to `value`; `fallback` when none is.
template <typename R, int... Vs, typename F>
R static_switch(IntList<Vs...>, int value, R fallback, F&& f) {
  R r = fallback;
  (void)((value == Vs ? (r = f(std::integral_constant<int, Vs>{}), true) : false) || ...);
  return r;
}

// "64, 72 or 128": the list as a message says it.
template <int V0, int... Vs>
std::string spell_or(IntList<V0, Vs...>) {
  std::string s = std::to_string(V0);
  int left = sizeof...(Vs);
  ((s += (--left == 0 ? " or " : ", ") + std::to_string(Vs)), ...);
  return s;
}

}  // namespace lavin_fast
