// Warp collectives of the emulated dialect, all built on one primitive, warp_collective: the lanes
// named in a mask meet, one function computes every lane's result from every lane's input. Shuffles
// follow PTX shfl.sync exactly (docs/spec/simt_emulation.md); reading a lane outside the mask
// is undefined behaviour on the GPU and an error here.
#pragma once

#include <cstdint>
#include <cstring>
#include <source_location>
#include <string>
#include <type_traits>

#include "simt/runtime.h"

namespace lf::emu {

constexpr int kWarpLanes = 32;

// Every lane named in `mask` calls this with the same mask at the same call site (the site's lambda
// type identifies the operation); the caller must be in the mask. When the last one arrives,
// compute(all, mask, outs) runs once: all[l] is lane l's `mine` (value-initialised for lanes outside
// mask), and lane l gets outs[l]. compute runs on the last lane's copy of the lambda: it must not
// depend on which lane calls (pass lane-specific values through `mine`).
template <typename In, typename Out, typename F>
Out warp_collective(unsigned mask, const In& mine, F&& compute,
                    std::source_location site = std::source_location::current()) {
  using Fn = std::remove_reference_t<F>;
  static const char op = 0;
  Out out{};
  const CollectiveCall call{
      &op,
      [](const void* const* ins, void* const* outs, unsigned m, const void* arg) {
        In all[kWarpLanes]{};
        Out res[kWarpLanes]{};
        for (int l = 0; l < kWarpLanes; ++l) {
          if (m >> l & 1u) all[l] = *static_cast<const In*>(ins[l]);
        }
        (*static_cast<Fn*>(const_cast<void*>(arg)))(static_cast<const In*>(all), m, static_cast<Out*>(res));
        for (int l = 0; l < kWarpLanes; ++l) {
          if (m >> l & 1u) *static_cast<Out*>(outs[l]) = res[l];
        }
      },
      &compute};
  warp_collective_raw(mask, call, &mine, &out, site);
  return out;
}

enum class ShflMode { kIdx, kUp, kDown, kXor };

// The source lane of `lane` under PTX shfl.sync's rule, or -1 when out of range (the caller then keeps
// its own value). b: srcLane / delta / laneMask, of which PTX uses the low 5 bits; width: a power of
// two in [1, 32].
inline int shfl_source(ShflMode mode, int lane, int b, int width) {
  b &= kWarpLanes - 1;
  const int seg_mask = ~(width - 1) & (kWarpLanes - 1);
  const int base = lane & seg_mask, last = base | (width - 1);
  switch (mode) {
    case ShflMode::kIdx: return base | (b & (width - 1));
    case ShflMode::kUp: return lane - b >= base ? lane - b : -1;
    case ShflMode::kDown: return lane + b <= last ? lane + b : -1;
    case ShflMode::kXor: return (lane ^ b) <= last ? (lane ^ b) : -1;
  }
  return -1;
}

template <typename T>
struct ShflIn {
  T v;
  int b, width;
};

// One collective per mode, so lanes meeting at different kinds of shuffle are reported.
// Shuffles any 4- or 8-byte trivially copyable value (the GPU does 8 bytes as two 32-bit shuffles with
// the same source lane: the same result).
template <ShflMode kMode, typename T>
T shfl(unsigned mask, T v, int b, int width, std::source_location site) {
  static_assert(std::is_trivially_copyable_v<T> && (sizeof(T) == 4 || sizeof(T) == 8), "shuffle 4 or 8 bytes");
  if (width < 1 || width > kWarpLanes || (width & (width - 1))) {
    fail("shuffle width " + std::to_string(width) + " is not a power of two in [1, 32]");
  }
  return warp_collective<ShflIn<T>, T>(
      mask, ShflIn<T>{v, b, width},
      [](const ShflIn<T>* all, unsigned m, T* outs) {
        for (int l = 0; l < kWarpLanes; ++l) {
          if (!(m >> l & 1u)) continue;
          const int j = shfl_source(kMode, l, all[l].b, all[l].width);
          if (j < 0) {
            outs[l] = all[l].v;
          } else if (!(m >> j & 1u)) {
            fail("shuffle: lane " + std::to_string(l) + " reads lane " + std::to_string(j) +
                 ", which its mask does not name (undefined on the GPU)");
          } else {
            outs[l] = all[j].v;
          }
        }
      },
      site);
}

inline unsigned ballot(unsigned mask, bool pred, std::source_location site) {
  return warp_collective<bool, unsigned>(
      mask, pred,
      [](const bool* all, unsigned m, unsigned* outs) {
        unsigned bits = 0;
        for (int l = 0; l < kWarpLanes; ++l) {
          if ((m >> l & 1u) && all[l]) bits |= 1u << l;
        }
        for (int l = 0; l < kWarpLanes; ++l) outs[l] = bits;
      },
      site);
}

// __syncwarp: a collective without data (the scheduler is the memory fence).
inline void syncwarp(unsigned mask, std::source_location site) {
  warp_collective<char, char>(mask, char{0}, [](const char*, unsigned, char*) {}, site);
}

}  // namespace lf::emu
