// Placeholder until the implicit-GEMM kernel lands: the simt backend runs the ATen composite.
#include "conv/causal_conv3d_simt.h"

namespace lavin_fast::conv {

const Backend& simt_backend() {
  static const Backend kSimt{nullptr, nullptr};
  return kSimt;
}

}  // namespace lavin_fast::conv
