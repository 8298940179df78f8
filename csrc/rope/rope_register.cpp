// The registrations of the fused QK RMSNorm + 3-D RoPE op: its schemas; its backends (rope_api.h's
// Backend): the CPU kernels, the CUDA kernels under the SIMT emulator (on CPU tensors), the CUDA kernels
// (CUDA builds); and the same functions (the shared host side) under CPU and CUDA: on CPU with the CPU
// kernels, or simt while the backend switch (lavin_fast.simt) is on; on CUDA with the CUDA kernels, on
// the device of x.
#include <c10/util/Exception.h>
#include <torch/library.h>

#include "common/backend.h"
#include "rope/rope_api.h"
#include "rope/rope_cpu.h"
#include "rope/rope_plan.h"
#include "rope/rope_simt_launch.h"

#ifdef LAVIN_FAST_WITH_CUDA
#include <ATen/ops/empty.h>
#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAStream.h>

#include "rope/rope_cuda_launch.h"
#endif

// The forward returns y (..., W) and the fp32 rstd (...) the backward needs (ones when normalize is
// false).
TORCH_LIBRARY_FRAGMENT(lavin_fast, m) {
  m.def(
      "qk_norm_rope(Tensor x, Tensor? weight, Tensor positions, int num_heads, float eps, int[] sections, "
      "float[] bases, bool interleaved, bool normalize) -> (Tensor y, Tensor rstd)");
  m.def(
      "qk_norm_rope_backward(Tensor grad_y, Tensor x, Tensor? weight, Tensor positions, Tensor rstd, "
      "int num_heads, int[] sections, float[] bases, bool interleaved, bool normalize, "
      "bool weight_requires_grad) -> (Tensor grad_x, Tensor grad_weight)");
}

namespace lavin_fast::rope {
namespace {

// ---- simt: the CUDA kernels under the SIMT emulator, on CPU tensors

namespace simt_impl {

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

}  // namespace simt_impl

const Backend& simt_backend() {
  static const Backend kSimt{&simt_impl::fwd, &simt_impl::bwd, /*max_width=*/rope_kernels::kMaxWidth};
  return kSimt;
}

#ifdef LAVIN_FAST_WITH_CUDA
// ---- cuda: the CUDA kernels on the current stream

namespace cuda_impl {

void fwd(const QkNormRopeFwdParams& p, c10::ScalarType dtype) {
  check_launch(cuda::qk_norm_rope_fwd(p, elem_type_of(dtype), c10::cuda::getCurrentCUDAStream()),
               "qk_norm_rope forward");
}

void bwd(const QkNormRopeBwdParams& p, c10::ScalarType dtype) {
  const ElemType type = elem_type_of(dtype);
  // grad_weight's partial rows. Freed when this returns, while the kernels may still run: safe, as the
  // caching allocator hands the block only to work ordered after them on this stream.
  const size_t bytes = cuda::qk_norm_rope_bwd_workspace_bytes(p, type);
  at::Tensor workspace;
  if (bytes > 0) {
    workspace = at::empty({static_cast<int64_t>(bytes)},
                          at::TensorOptions().dtype(at::kByte).device(at::kCUDA, c10::cuda::current_device()));
  }
  check_launch(cuda::qk_norm_rope_bwd(p, type, bytes > 0 ? workspace.data_ptr() : nullptr, bytes,
                                      c10::cuda::getCurrentCUDAStream()),
               "qk_norm_rope backward");
}

}  // namespace cuda_impl

const Backend& cuda_backend() {
  static const Backend kCuda{&cuda_impl::fwd, &cuda_impl::bwd, /*max_width=*/rope_kernels::kMaxWidth};
  return kCuda;
}
#endif  // LAVIN_FAST_WITH_CUDA

// ---- cpu

const Backend kCpuKernels{&cpu::qk_norm_rope_fwd, &cpu::qk_norm_rope_bwd, /*max_width=*/0};

const Backend& cpu_backend() { return cpu_or_simt(kCpuKernels, simt_backend()); }

// The op's functions on the kernels of be().
template <const Backend& (*be)()>
void impl_all(torch::Library& m) {
  m.impl("qk_norm_rope", [](const at::Tensor& x, const std::optional<at::Tensor>& w, const at::Tensor& pos,
                            int64_t heads, double eps, at::IntArrayRef sections, at::ArrayRef<double> bases,
                            bool interleaved, bool normalize) {
    const auto guard = guard_device_of(x);
    return qk_norm_rope(be(), x, w, pos, heads, eps, sections, bases, interleaved, normalize);
  });
  m.impl("qk_norm_rope_backward",
         [](const at::Tensor& g, const at::Tensor& x, const std::optional<at::Tensor>& w, const at::Tensor& pos,
            const at::Tensor& rstd, int64_t heads, at::IntArrayRef sections, at::ArrayRef<double> bases,
            bool interleaved, bool normalize, bool gw) {
           const auto guard = guard_device_of(x);
           return qk_norm_rope_backward(be(), g, x, w, pos, rstd, heads, sections, bases, interleaved,
                                        normalize, gw);
         });
}

}  // namespace

LAVIN_FAST_IMPL_CPU_AND_CUDA(impl_all)

}  // namespace lavin_fast::rope
