// The backend switch: whether the ops' CPU registrations run the CUDA kernels under the SIMT emulator
// instead of the CPU kernels, and with which schedule. Process-wide rather than per OS thread, because
// autograd may run a backward on another thread than the forward's. Python: lavin_fast.simt.
#pragma once

#include <cstdint>

#include "simt/runtime.h"

namespace lf::emu {

struct Mode {
  bool enabled = false;
  Schedule schedule = Schedule::kForward;
  uint64_t seed = 0;
};

Mode mode();
void set_mode(const Mode& m);

}  // namespace lf::emu
