// The simt backend: maps dtypes, reads the emulator's schedule from the backend switch, and turns the
// emulator's errors into c10::Error (a RuntimeError in Python).
#include "rope/rope_simt.h"

#include <c10/util/Exception.h>

#include "common/elem_type_of.h"
#include "rope/rope_plan.h"
#include "rope/rope_simt_launch.h"
#include "simt/mode.h"

namespace lavin_fast::rope {
namespace {

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

void fwd(const QkNormRopeFwdParams& p, c10::ScalarType dtype) {
  run("qk_norm_rope forward (simt)", [&](lf::emu::Schedule s, uint64_t seed) {
    return simt::qk_norm_rope_fwd(p, elem_type_of(dtype), s, seed);
  });
}

void bwd(const QkNormRopeBwdParams& p, c10::ScalarType dtype) {
  run("qk_norm_rope backward (simt)", [&](lf::emu::Schedule s, uint64_t seed) {
    return simt::qk_norm_rope_bwd(p, elem_type_of(dtype), s, seed);
  });
}

}  // namespace

const Backend& simt_backend() {
  static const Backend kSimt{&fwd, &bwd, /*max_width=*/rope_simt::kMaxWidth};
  return kSimt;
}

}  // namespace lavin_fast::rope
