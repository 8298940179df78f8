// The backend switch: whether the ops' CPU registrations run the CUDA kernels under the SIMT emulator
// instead of the CPU kernels, and with which schedule. Python: lavin_fast.simt. Per OS thread, so that
// threads entering and leaving `simt.enabled()` blocks never switch (or leave switched) each other's
// ops. Autograd runs the backward of CPU tensors on the thread that calls .backward(), and each op
// reads the switch when it runs: a backward called outside the block runs the CPU kernels.
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
