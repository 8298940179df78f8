// Schemas of the fused QK RMSNorm + 3-D RoPE op (csrc/rope). The forward returns y (..., W) and the
// fp32 rstd (...) the backward needs (ones when normalize is false).
#include <torch/library.h>

TORCH_LIBRARY_FRAGMENT(lavin_fast, m) {
  m.def(
      "qk_norm_rope(Tensor x, Tensor? weight, Tensor positions, int num_heads, float eps, int[] sections, "
      "float[] bases, bool interleaved, bool normalize) -> (Tensor y, Tensor rstd)");
  m.def(
      "qk_norm_rope_backward(Tensor grad_y, Tensor x, Tensor? weight, Tensor positions, Tensor rstd, "
      "int num_heads, int[] sections, float[] bases, bool interleaved, bool normalize, "
      "bool weight_requires_grad) -> (Tensor grad_x, Tensor grad_weight)");
}
