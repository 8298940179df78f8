// The registrations of causal_conv3d: its schemas; its backends (causal_conv3d_api.h's Backend): the ATen
// composite (causal_conv3d_aten.cpp), the CUDA forward kernel under the SIMT emulator (on CPU tensors),
// the implicit-GEMM CUDA forward kernel for bf16 / fp16 (CUDA builds; fp32 runs the composite: cuDNN
// convolutions on views); and the same functions (the shared host side) under CPU and CUDA: on CPU with
// the composite, or simt while the backend switch (lavin_fast.simt) is on; on CUDA with the CUDA
// kernel, on the device of x. The backward is the ATen composite on every backend.
#include <c10/util/Exception.h>
#include <torch/library.h>

#include "common/backend.h"
#include "conv/causal_conv3d_api.h"
#include "conv/causal_conv3d_simt_launch.h"

#ifdef LAVIN_FAST_WITH_CUDA
#include <c10/cuda/CUDAStream.h>

#include "conv/causal_conv3d_cuda_launch.h"
#endif

TORCH_LIBRARY_FRAGMENT(lavin_fast, m) {
  // x (N, C, T, H, W), weight (O, C, k_t, k_h, k_w), bias (O,), cache (N, C, k_t - 1, H, W)
  //   -> y (N, O, T_out, H_out, W_out), new_cache (N, C, k_t - 1, H, W) (empty (0,) unless return_cache)
  m.def(
      "causal_conv3d(Tensor x, Tensor weight, Tensor? bias, int[3] stride, int[2] padding, "
      "str temporal_pad, Tensor? cache, bool return_cache) -> (Tensor, Tensor)");
  // grad_new_cache: the gradient of the forward's new_cache output, or None.
  //   -> grad_x, grad_weight, grad_bias (empty (0,) unless has_bias), grad_cache (empty (0,) without cache)
  m.def(
      "causal_conv3d_backward(Tensor grad_y, Tensor? grad_new_cache, Tensor x, Tensor weight, "
      "bool has_bias, int[3] stride, int[2] padding, str temporal_pad, Tensor? cache) "
      "-> (Tensor, Tensor, Tensor, Tensor)");
}

namespace lavin_fast::conv {
namespace {

// The dtypes the CUDA kernel (and so the simt backend) takes; the others run the ATen composite.
bool takes(c10::ScalarType t) { return t == c10::kBFloat16 || t == c10::kHalf; }

// ---- simt: the CUDA kernels under the SIMT emulator, on CPU tensors

namespace simt_impl {

void fwd(const CausalConv3dParams& p, c10::ScalarType dtype) {
  run_simt("causal_conv3d forward (simt)", [&](lf::emu::Schedule s, uint64_t seed) {
    return simt::causal_conv3d_fwd(p, elem_type_of(dtype), s, seed);
  });
}

}  // namespace simt_impl

const Backend& simt_backend() {
  static const Backend kSimt{&simt_impl::fwd, &takes};
  return kSimt;
}

#ifdef LAVIN_FAST_WITH_CUDA
// ---- cuda: the CUDA kernels on the current stream

namespace cuda_impl {

void fwd(const CausalConv3dParams& p, c10::ScalarType dtype) {
  const cudaError_t err = cuda::causal_conv3d_fwd(p, elem_type_of(dtype), c10::cuda::getCurrentCUDAStream());
  TORCH_CHECK(err == cudaSuccess, "lavin_fast: launching the CUDA causal_conv3d kernel failed: ",
              cudaGetErrorName(err), ": ", cudaGetErrorString(err));
}

}  // namespace cuda_impl

const Backend& cuda_backend() {
  static const Backend kCuda{&cuda_impl::fwd, &takes};
  return kCuda;
}
#endif  // LAVIN_FAST_WITH_CUDA

// ---- cpu

const Backend kAten{nullptr, nullptr};

const Backend& cpu_backend() { return cpu_or_simt(kAten, simt_backend()); }

// The op's functions on the kernels of be().
template <const Backend& (*be)()>
void impl_all(torch::Library& m) {
  m.impl("causal_conv3d", [](const at::Tensor& x, const at::Tensor& w, const std::optional<at::Tensor>& b,
                             at::IntArrayRef stride, at::IntArrayRef padding, c10::string_view tpad,
                             const std::optional<at::Tensor>& cache, bool return_cache) {
    const auto guard = guard_device_of(x);
    return causal_conv3d(be(), x, w, b, stride, padding, std_view(tpad), cache, return_cache);
  });
  m.impl("causal_conv3d_backward",
         [](const at::Tensor& gy, const std::optional<at::Tensor>& gc, const at::Tensor& x, const at::Tensor& w,
            bool has_bias, at::IntArrayRef stride, at::IntArrayRef padding, c10::string_view tpad,
            const std::optional<at::Tensor>& cache) {
           const auto guard = guard_device_of(x);
           return causal_conv3d_backward(gy, gc, x, w, has_bias, stride, padding, std_view(tpad), cache);
         });
}

}  // namespace

LAVIN_FAST_IMPL_CPU_AND_CUDA(impl_all)

}  // namespace lavin_fast::conv
