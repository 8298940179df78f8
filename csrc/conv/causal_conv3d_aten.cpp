// Why this shape: a padded copy of x is what the causal convolution must avoid. Output frames whose
// window lies inside x (the bulk: all but the first ceil((k_t - 1) / s_t)) come from ATen
// convolutions over views of x, in chunks of output frames, each copied into the preallocated output:
// ATen convolutions only write fresh tensors, so a single call would hold a second output-sized
// tensor; chunks bound that temporary to about 1/16 of the output. The head frames come from per-frame
// pieces (Piece, causal_conv3d_geometry.h): replicated first-frame taps as one convolution with summed
// weights, cache taps on views of the cache. The work is exactly the taps on real data; the copies
// are of output chunks (and, for NCDHW, of input chunks: oneDNN wants dense input, which a time slice
// is only in channels-last-3d with N = 1).
#include "conv/causal_conv3d_aten.h"

#include <ATen/ATen.h>

#include <algorithm>

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

// Convolution of `len` frames to one output frame (time stride irrelevant). One frame goes through the
// 2-D convolution: ATen sends single-frame 3-D convolutions to its slow unfold path (slow_conv3d).
at::Tensor conv_frames(const Geometry& g, const at::Tensor& src, const at::Tensor& w) {
  if (src.size(2) == 1) {
    return at::convolution(src.select(2, 0), w.select(2, 0), std::nullopt, {g.sh, g.sw}, {g.ph, g.pw}, {1, 1}, false,
                           {0, 0}, 1)
        .unsqueeze(2);
  }
  return at::convolution(src, w, std::nullopt, {1, g.sh, g.sw}, {0, g.ph, g.pw}, {1, 1, 1}, false, {0, 0, 0}, 1);
}

// -> grad_src, grad_w of conv_frames.
std::tuple<at::Tensor, at::Tensor> conv_frames_backward(const Geometry& g, const at::Tensor& grad_out,
                                                        const at::Tensor& src, const at::Tensor& w) {
  if (src.size(2) == 1) {
    auto [gs, gw, unused] = at::convolution_backward(grad_out.select(2, 0), src.select(2, 0), w.select(2, 0),
                                                     std::nullopt, {g.sh, g.sw}, {g.ph, g.pw}, {1, 1}, false,
                                                     {0, 0}, 1, {true, true, false});
    return {gs.unsqueeze(2), gw.unsqueeze(2)};
  }
  auto [gs, gw, unused] = at::convolution_backward(grad_out, src, w, std::nullopt, {1, g.sh, g.sw}, {0, g.ph, g.pw},
                                                   {1, 1, 1}, false, {0, 0, 0}, 1, {true, true, false});
  return {gs, gw};
}

// Bulk output frames per ATen call: temporaries of about 1/16 of the output, at least 4 MiB (small
// tensors go in one call; at the VAE's 128 channels x 128 x 128 fp32, 8 MiB a frame, one frame a call,
// still 14 GFLOP each). Peak RSS increase over the inputs, 9 frames, NCDHW (bench/bench_conv.py):
// 161 MiB with 2-frame chunks, 144 MiB with 1-frame chunks (the 72 MiB output included; oneDNN
// also copies and reorders each NCDHW input chunk); pad + conv3d: 258 MiB.
constexpr int64_t kChunkMinBytes = int64_t{4} << 20;
constexpr int64_t kChunksPerOutput = 16;

int64_t bulk_chunk(const Geometry& g, int64_t elem_size) {
  const int64_t n_bulk = g.t_out - g.j_bulk;
  const int64_t frame_bytes = std::max<int64_t>(g.n * g.o * g.h_out * g.w_out * elem_size, 1);
  const int64_t target = std::max(kChunkMinBytes, n_bulk * frame_bytes / kChunksPerOutput);
  return std::clamp<int64_t>(target / frame_bytes, 1, std::max<int64_t>(n_bulk, 1));
}

// x frames read by output frames [ja, jb): [ja*st - (kt - 1), (jb - 1)*st + 1).
at::Tensor bulk_source(const Geometry& g, const at::Tensor& x, int64_t ja, int64_t jb) {
  const int64_t f0 = ja * g.st - (g.kt - 1);
  return time_slice(x, f0, (jb - 1) * g.st + 1 - f0);
}

}  // namespace

at::Tensor aten_forward(const Geometry& g, const at::Tensor& x, const at::Tensor& weight,
                        const std::optional<at::Tensor>& bias, const std::optional<at::Tensor>& cache) {
  const auto fmt = x.suggest_memory_format();
  // The output follows x's layout: ATen would pick channels-last for a channels-last weight too.
  const at::Tensor w = weight.contiguous(fmt);
  at::Tensor y = empty_output({g.n, g.o, g.t_out, g.h_out, g.w_out}, x.options().memory_format(fmt));
  const int64_t chunk = bulk_chunk(g, x.element_size());
  for (int64_t ja = g.j_bulk; ja < g.t_out; ja += chunk) {
    const int64_t jb = std::min(ja + chunk, g.t_out);
    y.narrow(2, ja, jb - ja)
        .copy_(at::convolution(bulk_source(g, x, ja, jb), w, bias, {g.st, g.sh, g.sw}, {0, g.ph, g.pw}, {1, 1, 1},
                               /*transposed=*/false, {0, 0, 0}, /*groups=*/1));
  }
  if (g.j_bulk > 0) {
    at::Tensor head = y.narrow(2, 0, g.j_bulk);
    if (bias) {
      head.copy_(bias->view({1, g.o, 1, 1, 1}).expand_as(head));
    } else {
      head.zero_();
    }
    for (const Piece& pc : pieces(g)) {
      y.narrow(2, pc.j, 1).add_(conv_frames(g, piece_source(pc, x, cache), piece_weight(pc, w)));
    }
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
  grad_x.zero_();
  at::Tensor grad_w = at::zeros(weight.sizes(), weight.options().dtype(acc));
  at::Tensor grad_b = has_bias ? grad_y.sum({0, 2, 3, 4}, false, acc).to(weight.scalar_type()) : at::empty({0}, x.options());
  at::Tensor grad_cache = cache ? at::zeros_like(*cache) : at::empty({0}, x.options());
  const int64_t chunk = bulk_chunk(g, x.element_size());
  for (int64_t ja = g.j_bulk; ja < g.t_out; ja += chunk) {
    const int64_t jb = std::min(ja + chunk, g.t_out);
    const at::Tensor src = bulk_source(g, x, ja, jb);
    auto [gsrc, gw, unused] = at::convolution_backward(
        time_slice(grad_y, ja, jb - ja), src, w, std::nullopt, {g.st, g.sh, g.sw}, {0, g.ph, g.pw}, {1, 1, 1}, false,
        {0, 0, 0}, 1, {true, true, false});
    // Chunks' input windows overlap by k_t - s_t frames: accumulate.
    grad_x.narrow(2, ja * g.st - (g.kt - 1), src.size(2)).add_(gsrc);
    grad_w.add_(gw.to(acc));
  }
  for (const Piece& pc : pieces(g)) {
    const at::Tensor src = piece_source(pc, x, cache);
    auto [gsrc, gw] = conv_frames_backward(g, time_slice(grad_y, pc.j, 1), src, piece_weight(pc, w));
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
