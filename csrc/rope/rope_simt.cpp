// The simt backend: maps dtypes, reads the emulator's schedule from the backend switch, and turns the
// emulator's errors into c10::Error (a RuntimeError in Python).
#include "rope/rope_simt.h"

#include <c10/util/Exception.h>

#include "common/elem_type_of.h"
#include "common/simt_call.h"
#include "rope/rope_plan.h"
#include "rope/rope_simt_launch.h"

namespace lavin_fast::rope {
namespace {

void fwd(const QkNormRopeFwdParams& p, c10::ScalarType dtype) {
  run_simt("qk_norm_rope forward (simt)", [&](lf::emu::Schedule s, uint64_t seed) {
    return simt::qk_norm_rope_fwd(p, elem_type_of(dtype), s, seed);
  });
}

void bwd(const QkNormRopeBwdParams& p, c10::ScalarType dtype) {
  run_simt("qk_norm_rope backward (simt)", [&](lf::emu::Schedule s, uint64_t seed) {
    return simt::qk_norm_rope_bwd(p, elem_type_of(dtype), s, seed);
  });
}

}  // namespace

const Backend& simt_backend() {
  static const Backend kSimt{&fwd, &bwd, /*max_width=*/rope_simt::kMaxWidth};
  return kSimt;
}

}  // namespace lavin_fast::rope
