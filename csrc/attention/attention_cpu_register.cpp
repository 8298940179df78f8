// CPU registrations of varlen attention: the CPU kernels (any head_dim 1..256), or the CUDA kernels
// under the SIMT emulator while the backend switch (simt/mode.h, lavin_fast.simt in Python) is on.
#include <torch/library.h>

#include "attention/attention_api.h"
#include "attention/attention_cpu.h"
#include "attention/attention_simt.h"
#include "simt/mode.h"

namespace lavin_fast::attention {
namespace {

// Head dims beyond 256 would need more than the per-thread tile buffers are sized for.
constexpr int kCpuMaxHeadDim = 256;

const char* cpu_unsupported(ElemType, int head_dim, int64_t) {
  return head_dim >= 1 && head_dim <= kCpuMaxHeadDim ? nullptr
                                                     : "head_dim must be in 1..256 on the CPU";
}

const Backend kCpuBackend{"cpu", /*validates_cu_seqlens=*/true, &cpu_unsupported,
                          /*writes_lse_residual=*/true, &cpu::varlen_attention_fwd,
                          &cpu::varlen_attention_bwd_workspace_floats,
                          &cpu::varlen_attention_bwd};

const Backend& backend() { return lf::emu::mode().enabled ? simt_backend() : kCpuBackend; }

using OptT = std::optional<at::Tensor>;

}  // namespace

TORCH_LIBRARY_IMPL(lavin_fast, CPU, m) {
  m.impl("varlen_attention",
         [](const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& cu_q,
            const at::Tensor& cu_k, int64_t max_q, int64_t max_k, double scale, bool causal,
            const OptT& frame_q, const OptT& frame_k, const OptT& tiles, int64_t tile_q, int64_t tile_k) {
           return varlen_attention(backend(), q, k, v, cu_q, cu_k, max_q, max_k, scale, causal,
                                   frame_q, frame_k, tiles, tile_q, tile_k);
         });
  m.impl("varlen_attention_backward",
         [](const at::Tensor& g, const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
            const at::Tensor& out, const at::Tensor& lse, const OptT& lse_res, const at::Tensor& cu_q,
            const at::Tensor& cu_k, int64_t max_q, int64_t max_k, double scale, bool causal,
            const OptT& frame_q, const OptT& frame_k, const OptT& tiles, int64_t tile_q, int64_t tile_k,
            bool det) {
           return varlen_attention_backward(backend(), g, q, k, v, out, lse, lse_res, cu_q, cu_k, max_q, max_k,
                                            scale, causal, frame_q, frame_k, tiles, tile_q, tile_k, det);
         });
}

}  // namespace lavin_fast::attention
