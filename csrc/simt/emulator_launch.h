// The launcher every op's simt side hands to its launch logic (the same logic the CUDA launcher runs):
// each launch runs to completion on the emulator under the given schedule. Errors throw lf::emu::Error.
#pragma once

#include <cstdint>

#include "simt/runtime.h"

namespace lavin_fast::simt {

struct EmulatorLaunch {
  lf::emu::Schedule schedule;
  uint64_t seed;

  template <typename... P, typename... A>
  bool operator()(const char* name, void (*kernel)(P...), dim3 grid, dim3 block, size_t smem, A... args) {
    if (grid.x == 0 || grid.y == 0 || grid.z == 0) return true;  // as StreamLaunch: nothing to do
    lf::emu::LaunchConfig cfg;
    cfg.kernel = name;
    cfg.grid = grid;
    cfg.block = block;
    cfg.dynamic_smem = smem;
    cfg.schedule = schedule;
    cfg.seed = seed;
    lf::emu::launch(cfg, kernel, args...);
    return true;
  }
};

}  // namespace lavin_fast::simt
