// The simt backend: maps dtypes, reads the emulator's schedule from the backend switch, and turns the
// emulator's errors into c10::Error (a RuntimeError in Python).
#include "norms/rms_norm_simt.h"

#include <c10/util/Exception.h>

#include "common/elem_type_of.h"
#include "common/simt_call.h"
#include "norms/rms_norm_simt_launch.h"

namespace lavin_fast::norms {
namespace {

void fwd(const RmsNormFwdParams& p, c10::ScalarType dtype) {
  run_simt("RMSNorm forward (simt)", [&](lf::emu::Schedule s, uint64_t seed) {
    return simt::rms_norm_fwd(p, elem_type_of(dtype), s, seed);
  });
}

void bwd(const RmsNormBwdParams& p, c10::ScalarType dtype) {
  run_simt("RMSNorm backward (simt)", [&](lf::emu::Schedule s, uint64_t seed) {
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
