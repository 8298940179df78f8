// The simt backend: reads the emulator's schedule from the backend switch, realigns misaligned inputs,
// and turns the emulator's errors into c10::Error (a RuntimeError in Python).
#include "attention/attention_simt.h"

#include <c10/util/Exception.h>

#include "attention/attention_kernel_inputs.h"
#include "attention/attention_simt_launch.h"
#include "common/simt_call.h"

namespace lavin_fast::attention {
namespace {

void fwd(const VarlenAttentionFwdParams& params) {
  VarlenAttentionFwdParams p = params;
  const auto keep = align_inputs(p, at::kCPU);
  run_simt("varlen attention forward (simt)",
      [&](lf::emu::Schedule s, uint64_t seed) { return simt::attention_fwd(p, s, seed); });
}

void bwd(const VarlenAttentionBwdParams& params) {
  VarlenAttentionBwdParams p = params;
  const auto keep = align_inputs(p, at::kCPU);
  run_simt("varlen attention backward (simt)",
      [&](lf::emu::Schedule s, uint64_t seed) { return simt::attention_bwd(p, s, seed); });
}

}  // namespace

const Backend& simt_backend() {
  // CPU tensors: cu_seqlens values are validated on the host, as for the CPU backend.
  // The CUDA kernels keep lse only (bf16/fp16 scores round far above lse's fp32 ulp).
  static const Backend kSimt{"simt", /*validates_cu_seqlens=*/true, &simt::attention_unsupported,
                             /*writes_lse_residual=*/false, &fwd,
                             &simt::attention_bwd_workspace_floats, &bwd};
  return kSimt;
}

}  // namespace lavin_fast::attention
