// Why this shape: a padded copy of x is what the causal convolution must avoid, and ATen's
// convolutions only write freshly allocated outputs. So the one large convolution runs over the view
// x[:, :, :T - (k_t - 1)] with k_t - 1 zero frames on *both* sides in time (symmetric padding is all
// ATen offers): that yields exactly the T_out output frames, as the final output tensor, with every
// tap right except those on the causal padding (head frames) and on the last k_t - 1 frames of x
// (tail frames). Those few taps are added per output frame from single-frame convolutions on views
// (Piece, causal_conv3d_geometry.h). oneDNN skips the zero taps, so the total work is that of
// pad + conv3d; the pieces cost a few small calls.
//
// Copies that remain: oneDNN needs a dense input, which a time slice of x is for channels-last-3d
// with N = 1 (frames are contiguous) but not for NCDHW, where it copies the slice (T - k_t + 1 frames,
// still less than the T + k_t - 1 of the padded copy). See docs/conv.md for measured peaks.
#include "conv/causal_conv3d_aten.h"

#include <ATen/ATen.h>

#include "common/alloc.h"

namespace lavin_fast::conv {
namespace {

// x[:, :, f0 : f0 + len]. With N = 1 the batch stride is meaningless, but ATen's layout detection
// still compares it with the slice's size: set it to what a dense slice would have, so a channels-last
// slice is recognised as one (and convolved in place) instead of being copied to NCDHW.
at::Tensor time_slice(const at::Tensor& x, int64_t f0, int64_t len) {
  at::Tensor v = x.narrow(2, f0, len);
  if (v.size(0) != 1) return v;
  std::vector<int64_t> strides(v.strides().begin(), v.strides().end());
  strides[0] = v.size(1) * v.size(2) * v.size(3) * v.size(4);
  return v.as_strided(v.sizes(), strides, v.storage_offset());
}

at::Tensor piece_source(const Piece& pc, const at::Tensor& x, const std::optional<at::Tensor>& cache) {
  switch (pc.source) {
    case Piece::kX: return time_slice(x, pc.f0, pc.len);
    case Piece::kXFirstSummed: return time_slice(x, 0, 1);
    case Piece::kCache: return time_slice(*cache, pc.f0, pc.len);
  }
  return {};
}

at::ScalarType acc_type(at::ScalarType t) { return t == at::kDouble ? at::kDouble : at::kFloat; }

// The weight taps of a piece; replicated first-frame taps summed (in fp32, rounded once).
at::Tensor piece_weight(const Piece& pc, const at::Tensor& weight) {
  at::Tensor taps = weight.narrow(2, pc.tap0, pc.len);
  if (pc.source != Piece::kXFirstSummed || pc.len == 1) return taps;
  return taps.sum(2, /*keepdim=*/true, acc_type(weight.scalar_type())).to(weight.scalar_type());
}

// Single output frame convolutions: time stride 1 over exactly len frames.
std::vector<int64_t> piece_stride(const Geometry& g) { return {1, g.sh, g.sw}; }
std::vector<int64_t> piece_padding(const Geometry& g) { return {0, g.ph, g.pw}; }
const std::vector<int64_t> kOnes{1, 1, 1};
const std::vector<int64_t> kZeros3{0, 0, 0};

}  // namespace

at::Tensor aten_forward(const Geometry& g, const at::Tensor& x, const at::Tensor& weight,
                        const std::optional<at::Tensor>& bias, const std::optional<at::Tensor>& cache) {
  const auto fmt = x.suggest_memory_format();
  // The output follows x's layout: ATen would pick channels-last for a channels-last weight too.
  const at::Tensor w = weight.contiguous(fmt);
  at::Tensor y;
  if (g.t_main > 0) {
    y = at::convolution(time_slice(x, 0, g.t_main), w, bias, {g.st, g.sh, g.sw}, {g.kt - 1, g.ph, g.pw}, kOnes,
                        /*transposed=*/false, kZeros3, /*groups=*/1);
    // ATen's small-size and fp16 CPU paths (slow_conv3d) return NCDHW whatever the input: keep the
    // documented contract (y in x's layout) at the cost of a copy there; oneDNN needs none.
    if (!y.is_contiguous(fmt)) y = y.contiguous(fmt);
  } else {
    y = empty_output({g.n, g.o, g.t_out, g.h_out, g.w_out}, x.options().memory_format(fmt));
    if (bias) {
      y.copy_(bias->view({1, g.o, 1, 1, 1}).expand_as(y));
    } else {
      y.zero_();
    }
  }
  for (const Piece& pc : pieces(g)) {
    const at::Tensor part = at::convolution(piece_source(pc, x, cache), piece_weight(pc, w), std::nullopt,
                                            piece_stride(g), piece_padding(g), kOnes, false, kZeros3, 1);
    y.narrow(2, pc.j, 1).add_(part);
  }
  return y;
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> aten_backward(
    const Geometry& g, const at::Tensor& grad_y, const at::Tensor& x, const at::Tensor& weight, bool has_bias,
    const std::optional<at::Tensor>& cache) {
  const auto fmt = x.suggest_memory_format();
  const at::ScalarType acc = acc_type(weight.scalar_type());
  const at::Tensor w = weight.contiguous(fmt);
  at::Tensor grad_x = empty_output(x.sizes(), x.options().memory_format(fmt));
  at::Tensor grad_w, grad_b;
  if (g.t_main > 0) {
    // The bulk's input gradient covers x frames [0, t_main): one copy into grad_x (the ATen backward
    // cannot write into a slice), the remaining frames start at zero.
    auto [gx, gw, gb] = at::convolution_backward(
        grad_y, time_slice(x, 0, g.t_main), w, has_bias ? std::optional<at::IntArrayRef>(at::IntArrayRef{g.o})
                                                      : std::nullopt,
        {g.st, g.sh, g.sw}, {g.kt - 1, g.ph, g.pw}, kOnes, false, kZeros3, 1, {true, true, has_bias});
    grad_x.narrow(2, 0, g.t_main).copy_(gx);
    grad_x.narrow(2, g.t_main, g.t - g.t_main).zero_();
    grad_w = gw.to(acc);
    grad_b = has_bias ? gb : at::empty({0}, x.options());
  } else {
    grad_x.zero_();
    grad_w = at::zeros(weight.sizes(), weight.options().dtype(acc));
    grad_b = has_bias ? grad_y.sum({0, 2, 3, 4}, false, acc).to(weight.scalar_type()) : at::empty({0}, x.options());
  }
  at::Tensor grad_cache = cache ? at::zeros_like(*cache) : at::empty({0}, x.options());
  for (const Piece& pc : pieces(g)) {
    const at::Tensor src = piece_source(pc, x, cache);
    auto [gsrc, gw, unused] = at::convolution_backward(time_slice(grad_y, pc.j, 1), src, piece_weight(pc, w),
                                                       std::nullopt, piece_stride(g), piece_padding(g), kOnes,
                                                       false, kZeros3, 1, {true, true, false});
    switch (pc.source) {
      case Piece::kX: grad_x.narrow(2, pc.f0, pc.len).add_(gsrc); break;
      case Piece::kXFirstSummed: grad_x.narrow(2, 0, 1).add_(gsrc); break;
      case Piece::kCache: grad_cache.narrow(2, pc.f0, pc.len).add_(gsrc); break;
    }
    // A summed piece's weight gradient belongs to each of its taps (broadcast over dim 2).
    grad_w.narrow(2, pc.tap0, pc.len).add_(gw.to(acc));
  }
  return {grad_x, grad_w.to(weight.scalar_type()).contiguous(), grad_b, grad_cache};
}

}  // namespace lavin_fast::conv
