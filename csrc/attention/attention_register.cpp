// The registrations of varlen attention: its schemas (the contract in attention_params.h); its backends
// (attention_api.h's Backend): the CPU kernels (any head_dim 1..256), the CUDA kernels under the SIMT
// emulator (on CPU tensors), the CUDA kernels (CUDA builds); and the same functions (the shared host
// side) under CPU and CUDA: on CPU with the CPU kernels, or simt while the backend switch
// (lavin_fast.simt) is on; on CUDA with the CUDA kernels, on the device of q.
#include <c10/util/Exception.h>
#include <torch/library.h>

#include "attention/attention_api.h"
#include "attention/attention_cpu.h"
#include "attention/attention_kernel_inputs.h"
#include "attention/attention_plan.h"
#include "attention/attention_simt_launch.h"
#include "common/backend.h"

#ifdef LAVIN_FAST_WITH_CUDA
#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAStream.h>

#include "attention/attention_cuda_launch.h"
#endif

TORCH_LIBRARY_FRAGMENT(lavin_fast, m) {
  // q (total_q, H, D), k/v (total_k, H_kv, D), cu_seqlens int32 (S + 1,)  ->  out (total_q, H, D),
  // lse (H, total_q) fp32, lse_residual (H, total_q) fp32 (log-sum-exp - lse: what the backward needs
  // beyond lse's precision; attention_params.h). tile_mask bool (S, ceil(max_seqlen_q / tile_q),
  // ceil(max_seqlen_k / tile_k)); frame ids int32 (total_q,), (total_k,), both or neither.
  // max_seqlen_q/k vary per batch: SymInt, so torch.compile keeps them symbolic (an int would
  // specialise the graph on each value); the kernels take them as int64_t (the dispatcher passes
  // concrete values to real kernels).
  m.def(
      "varlen_attention(Tensor q, Tensor k, Tensor v, Tensor cu_seqlens_q, Tensor cu_seqlens_k, "
      "SymInt max_seqlen_q, SymInt max_seqlen_k, float softmax_scale, bool causal, Tensor? frame_ids_q, "
      "Tensor? frame_ids_k, Tensor? tile_mask, int tile_q, int tile_k) -> (Tensor, Tensor, Tensor)");
  // -> grad_q, grad_k, grad_v (dtypes and shapes of q, k, v)
  m.def(
      "varlen_attention_backward(Tensor grad_out, Tensor q, Tensor k, Tensor v, Tensor out, "
      "Tensor lse, Tensor? lse_residual, Tensor cu_seqlens_q, Tensor cu_seqlens_k, SymInt max_seqlen_q, "
      "SymInt max_seqlen_k, "
      "float softmax_scale, bool causal, Tensor? frame_ids_q, Tensor? frame_ids_k, "
      "Tensor? tile_mask, int tile_q, int tile_k, bool deterministic) -> (Tensor, Tensor, Tensor)");
}

namespace lavin_fast::attention {
namespace {

// ---- simt: the CUDA kernels under the SIMT emulator, on CPU tensors

namespace simt_impl {

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

}  // namespace simt_impl

const Backend& simt_backend() {
  // CPU tensors: cu_seqlens values are validated on the host, as for the CPU backend.
  // The CUDA kernels keep lse only (bf16/fp16 scores round far above lse's fp32 ulp).
  static const Backend kSimt{"simt", /*validates_cu_seqlens=*/true, &attention_kernels::unsupported,
                             /*writes_lse_residual=*/false, &simt_impl::fwd,
                             &attention_kernels::bwd_workspace_floats_for, &simt_impl::bwd};
  return kSimt;
}

#ifdef LAVIN_FAST_WITH_CUDA
// ---- cuda: the CUDA kernels on the current stream

namespace cuda_impl {

at::Device current_device() { return at::Device(at::kCUDA, c10::cuda::current_device()); }

void fwd(const VarlenAttentionFwdParams& params) {
  VarlenAttentionFwdParams p = params;
  const auto keep = align_inputs(p, current_device());  // copies freed in stream order
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  check_launch(static_switch(CudaHeadDims{}, p.head_dim, cudaErrorInvalidValue,
                             [&](auto d) { return cuda::attention_fwd<decltype(d)::value>(p, stream); }),
               "varlen attention forward");
}

void bwd(const VarlenAttentionBwdParams& params) {
  VarlenAttentionBwdParams p = params;
  const auto keep = align_inputs(p, current_device());
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  check_launch(static_switch(CudaHeadDims{}, p.head_dim, cudaErrorInvalidValue,
                             [&](auto d) { return cuda::attention_bwd<decltype(d)::value>(p, stream); }),
               "varlen attention backward");
}

}  // namespace cuda_impl

const Backend& cuda_backend() {
  // cu_seqlens values stay on the device (reading them would synchronise): shape and dtype only.
  static const Backend kCuda{"cuda", /*validates_cu_seqlens=*/false, &attention_kernels::unsupported,
                             /*writes_lse_residual=*/false, &cuda_impl::fwd,
                             &attention_kernels::bwd_workspace_floats_for, &cuda_impl::bwd};
  return kCuda;
}
#endif  // LAVIN_FAST_WITH_CUDA

// ---- cpu

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

const Backend& cpu_backend() { return cpu_or_simt(kCpuBackend, simt_backend()); }

using OptT = std::optional<at::Tensor>;

// The op's functions on the kernels of be().
template <const Backend& (*be)()>
void impl_all(torch::Library& m) {
  m.impl("varlen_attention",
         [](const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& cu_q,
            const at::Tensor& cu_k, int64_t max_q, int64_t max_k, double scale, bool causal,
            const OptT& frame_q, const OptT& frame_k, const OptT& tiles, int64_t tile_q, int64_t tile_k) {
           const auto guard = guard_device_of(q);
           return varlen_attention(be(), q, k, v, cu_q, cu_k, max_q, max_k, scale, causal,
                                   frame_q, frame_k, tiles, tile_q, tile_k);
         });
  m.impl("varlen_attention_backward",
         [](const at::Tensor& g, const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
            const at::Tensor& out, const at::Tensor& lse, const OptT& lse_res, const at::Tensor& cu_q,
            const at::Tensor& cu_k, int64_t max_q, int64_t max_k, double scale, bool causal,
            const OptT& frame_q, const OptT& frame_k, const OptT& tiles, int64_t tile_q, int64_t tile_k,
            bool det) {
           const auto guard = guard_device_of(q);
           return varlen_attention_backward(be(), g, q, k, v, out, lse, lse_res, cu_q, cu_k, max_q, max_k,
                                            scale, causal, frame_q, frame_k, tiles, tile_q, tile_k, det);
         });
}

}  // namespace

LAVIN_FAST_IMPL_CPU_AND_CUDA(impl_all)

}  // namespace lavin_fast::attention
