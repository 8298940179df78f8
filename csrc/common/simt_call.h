// How a simt backend (csrc/<op>/*_simt.cpp) runs one launcher call: with the schedule and seed of the
// backend switch (lavin_fast.simt.enabled), turning the emulator's errors into c10::Error (a Python
// RuntimeError naming the op). The host side has already rejected what the kernels do not take, so a
// launcher that still refuses is an internal error.
#pragma once

#include <c10/util/Exception.h>

#include "simt/mode.h"

namespace lavin_fast {

template <typename F>  // F: bool(lf::emu::Schedule, uint64_t seed)
void run_simt(const char* what, F&& call) {
  const lf::emu::Mode m = lf::emu::mode();
  bool ok = false;
  try {
    ok = call(m.schedule, m.seed);
  } catch (const lf::emu::Error& e) {
    TORCH_CHECK(false, "lavin_fast: ", what, ": ", e.what());
  }
  TORCH_INTERNAL_ASSERT(ok, "lavin_fast: ", what, ": the simt launcher rejected its arguments");
}

}  // namespace lavin_fast
