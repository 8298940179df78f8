// The launcher every op's simt side hands to its launch logic (the same logic the CUDA launcher runs):
// each launch runs to completion on the emulator under the given schedule. Errors throw lf::emu::Error.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>

#include "common/launch_status.h"
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

// An op's launch logic, run(launch) -> LaunchStatus, on the emulator: whether it launched (kOk).
template <typename Run>
bool launch_on_emulator(lf::emu::Schedule schedule, uint64_t seed, Run&& run) {
  EmulatorLaunch launch{schedule, seed};
  return run(launch) == LaunchStatus::kOk;
}

// A kernel workspace of `bytes` (a multiple of 4) that starts as NaN, like an output under the tests'
// poisoning: a partial sum read before it was written shows. operator new[] aligns to 16 bytes on
// x86-64 and aarch64.
inline std::unique_ptr<float[]> nan_workspace(size_t bytes) {
  const size_t floats = bytes / sizeof(float);
  std::unique_ptr<float[]> ws(floats ? new float[floats] : nullptr);
  for (size_t i = 0; i < floats; ++i) ws[i] = std::numeric_limits<float>::quiet_NaN();
  return ws;
}

}  // namespace lavin_fast::simt
