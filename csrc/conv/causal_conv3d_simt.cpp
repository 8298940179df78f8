// The simt backend of causal_conv3d: the CUDA forward kernel under the SIMT emulator for bf16 / fp16
// (fp32 and float64 keep the ATen composite, as on CUDA), the emulator's errors as c10::Error.
#include "conv/causal_conv3d_simt.h"

#include <c10/util/Exception.h>

#include "common/elem_type_of.h"
#include "common/simt_call.h"
#include "conv/causal_conv3d_simt_launch.h"

namespace lavin_fast::conv {
namespace {

void fwd(const CausalConv3dParams& p, c10::ScalarType dtype) {
  run_simt("causal_conv3d forward (simt)", [&](lf::emu::Schedule s, uint64_t seed) {
    return simt::causal_conv3d_fwd(p, elem_type_of(dtype), s, seed);
  });
}

bool takes(c10::ScalarType t) { return t == c10::kBFloat16 || t == c10::kHalf; }

}  // namespace

const Backend& simt_backend() {
  static const Backend kSimt{&fwd, &takes};
  return kSimt;
}

}  // namespace lavin_fast::conv
