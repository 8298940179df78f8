// The simt backend: maps dtypes, reads the emulator's schedule from the backend switch, and turns the
// emulator's errors into c10::Error (a RuntimeError in Python).
#include "norms/rms_norm_simt.h"

#include <c10/util/Exception.h>

#include "common/elem_type_of.h"
#include "norms/rms_norm_simt_launch.h"
#include "simt/mode.h"

namespace lavin_fast::norms {
namespace {

// Runs one launcher call; the host side has already rejected what the kernels do not take.
template <typename F>
void run(const char* what, F&& call) {
  const lf::emu::Mode m = lf::emu::mode();
  bool ok = false;
  try {
    ok = call(m.schedule, m.seed);
  } catch (const lf::emu::Error& e) {
    TORCH_CHECK(false, "lavin_fast: ", what, ": ", e.what());
  }
  TORCH_INTERNAL_ASSERT(ok, "lavin_fast: ", what, ": the simt launcher rejected its arguments");
}

void fwd(const RmsNormFwdParams& p, c10::ScalarType dtype) {
  run("RMSNorm forward (simt)", [&](lf::emu::Schedule s, uint64_t seed) {
    return simt::rms_norm_fwd(p, elem_type_of(dtype), s, seed);
  });
}

void bwd(const RmsNormBwdParams& p, c10::ScalarType dtype) {
  run("RMSNorm backward (simt)", [&](lf::emu::Schedule s, uint64_t seed) {
    return simt::rms_norm_bwd(p, elem_type_of(dtype), s, seed);
  });
}

}  // namespace

const Backend& simt_backend() {
  // Host-side CPU tensors: cu_seqlens values are validated like the CPU backend's.
  static const Backend kSimt{&fwd, &bwd, /*validates_cu_seqlens=*/true};
  return kSimt;
}

}  // namespace lavin_fast::norms
