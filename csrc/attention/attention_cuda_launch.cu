// Host-only pieces of the CUDA attention launchers (no kernels here: attention_cuda_hd*.cu). No torch
// headers.
#include "attention/attention_cuda_launch.h"
#include "attention/attention_launch.h"

namespace lavin_fast::cuda {

const char* attention_unsupported(ElemType dtype, int head_dim, int64_t num_heads) {
  return attention_simt::unsupported(dtype, head_dim, num_heads);
}

int64_t attention_bwd_workspace_floats(const VarlenAttentionBwdParams& p) {
  return attention_simt::bwd_workspace_floats_for(p);
}

}  // namespace lavin_fast::cuda
