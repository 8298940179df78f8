// Why this shape: a padded copy of x is what the causal convolution must avoid. Output frames whose
// window lies inside x (the bulk: all but the first ceil((k_t - 1) / s_t)) come from convolutions over
// views of x; the head frames from per-frame pieces (Piece, causal_conv3d_geometry.h): replicated
// first-frame taps as one convolution with summed weights, cache taps on views of the cache. The work
// is exactly the taps on real data.
//
// fp32 on the CPU: oneDNN writes every frame straight into the output (a fused "add" into a strided
// view of y), so no output temporary and no copy. Channels-last-3d with N = 1 reads x in place too:
// one call, nothing allocated beyond y. NCDHW goes in chunks of output frames: a time slice of NCDHW x
// is not dense, and oneDNN reorders source and destination to its blocked layout internally; chunks
// bound those temporaries (bulk_chunk). Other dtypes and devices: ATen convolutions into fresh
// tensors, copied into y chunk by chunk.
#include "conv/causal_conv3d_aten.h"

#include <ATen/ATen.h>
#include <ATen/Config.h>

#include <algorithm>
#include <cstring>

#include "common/alloc.h"
#include "common/torch_op.h"

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
  return time_slice(pc.source == Piece::kX ? x : *cache, pc.f0, pc.len);
}

at::ScalarType acc_type(at::ScalarType t) { return t == at::kDouble ? at::kDouble : at::kFloat; }

// The weight frames of a piece; summed taps added in fp32 (float64 for float64), rounded once.
at::Tensor piece_weight(const Piece& pc, const at::Tensor& weight) {
  if (pc.summed == 1) return weight.narrow(2, pc.tap0, pc.len);
  const at::Tensor first =
      weight.narrow(2, pc.tap0, pc.summed).sum(2, /*keepdim=*/true, acc_type(weight.scalar_type())).to(weight.scalar_type());
  if (pc.len == 1) return first;
  return at::cat({first, weight.narrow(2, pc.tap0 + pc.summed, pc.len - 1)}, 2);
}

// A piece's weight gradient into grad_w: the first frame's to each summed tap.
void add_piece_weight_grad(const Piece& pc, at::Tensor& grad_w, const at::Tensor& gw) {
  grad_w.narrow(2, pc.tap0, pc.summed).add_(gw.narrow(2, 0, 1));
  if (pc.len > 1) grad_w.narrow(2, pc.tap0 + pc.summed, pc.len - 1).add_(gw.narrow(2, 1, pc.len - 1));
}

// fp32 on the CPU goes to oneDNN directly: ATen's heuristic sends batch-1 inputs with
// N*C*T*H <= ~20480 (short streaming chunks, single-frame head pieces) to its unfold path
// slow_conv3d, ~5x slower. Other dtypes (float64, half; bf16 needs a CPU check oneDNN does
// internally) and devices go through at::convolution.
bool direct_onednn(const at::Tensor& src) {
#if AT_MKLDNN_ENABLED()
  return src.is_cpu() && src.scalar_type() == at::kFloat && at::globalContext().userEnabledMkldnn();
#else
  return false;
#endif
}

// A forward convolution without transposition, dilation or groups.
at::Tensor conv(const at::Tensor& src, const at::Tensor& w, const std::optional<at::Tensor>& bias,
                at::IntArrayRef stride, at::IntArrayRef padding) {
  const std::vector<int64_t> dilation(stride.size(), 1), out_pad(stride.size(), 0);
#if AT_MKLDNN_ENABLED()
  if (direct_onednn(src)) return at::mkldnn_convolution(src, w, bias, padding, stride, dilation, /*groups=*/1);
#endif
  return at::convolution(src, w, bias, stride, padding, dilation, /*transposed=*/false, out_pad, /*groups=*/1);
}

// Convolution of `len` frames to one output frame (time stride irrelevant). Through ATen, one frame
// goes through the 2-D convolution (ATen sends single-frame 3-D convolutions to slow_conv3d); through
// oneDNN it stays 3-D (oneDNN's 2-D convolution of one frame measured ~3x slower per tap than its
// 3-D one: 128 channels, 64 x 64, fp32).
at::Tensor conv_frames(const Geometry& g, const at::Tensor& src, const at::Tensor& w) {
  if (src.size(2) == 1 && !direct_onednn(src)) {
    return conv(src.select(2, 0), w.select(2, 0), std::nullopt, {g.sh, g.sw}, {g.ph, g.pw}).unsqueeze(2);
  }
  return conv(src, w, std::nullopt, {1, g.sh, g.sw}, {0, g.ph, g.pw});
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

// Bulk output frames per convolution call. A chunk's temporaries: its output, and for NCDHW also a
// dense copy of its input frames plus oneDNN's reorder of them to its blocked layout, which makes small
// NCDHW chunks slow (128 channels, 9 frames of 128 x 128 fp32, the 7 bulk frames: 3.4 s in 1-frame
// chunks, 2.5 s in 2-frame chunks, 2.1 s in one call). So: NCDHW, about 1/4 of the output per call
// (at least 16 MiB). Channels-last (input read in place): about 1/16 of the output but at least
// 24 MiB (3 frames of 128 channels x 128 x 128 fp32: 1-frame chunks measured 15-25% slower over 17
// frames, at 16 MiB more peak). Small tensors go in one call.
int64_t bulk_chunk(const Geometry& g, int64_t elem_size, bool channels_last) {
  const int64_t min_bytes = channels_last ? (int64_t{24} << 20) : (int64_t{16} << 20);
  const int64_t per_output = channels_last ? 16 : 4;
  const int64_t n_bulk = g.t_out - g.j_bulk;
  const int64_t frame_bytes = std::max<int64_t>(g.n * g.o * g.h_out * g.w_out * elem_size, 1);
  const int64_t target = std::max(min_bytes, n_bulk * frame_bytes / per_output);
  return std::clamp<int64_t>(target / frame_bytes, 1, std::max<int64_t>(n_bulk, 1));
}

// x frames read by output frames [ja, jb): [ja*st - (kt - 1), (jb - 1)*st + 1).
at::Tensor bulk_source(const Geometry& g, const at::Tensor& x, int64_t ja, int64_t jb) {
  const int64_t f0 = ja * g.st - (g.kt - 1);
  return time_slice(x, f0, (jb - 1) * g.st + 1 - f0);
}

// oneDNN's convolution with a fused "add" of a destination it writes in place (PyTorch ships it as
// mkldnn::_convolution_pointwise_.binary, for inductor's conv + add fusion). Its destination may be a
// strided view, so the bulk of the output is written straight into y: no output-sized temporary and
// no copy, and for stride 1 the bulk reads all of x, a dense tensor in either layout, so no input copy.
using ConvAddFn = at::Tensor&(at::Tensor&, const at::Tensor&, const at::Tensor&, const std::optional<at::Tensor>&,
                              at::IntArrayRef, at::IntArrayRef, at::IntArrayRef, int64_t, std::string_view,
                              std::optional<at::Scalar>, std::optional<std::string_view>,
                              c10::List<std::optional<at::Scalar>>, std::optional<std::string_view>);

const std::optional<c10::TypedOperatorHandle<ConvAddFn>>& onednn_conv_add() {
  static const auto op = find_op<ConvAddFn>("mkldnn::_convolution_pointwise_", "binary");
  return op;
}

// dst += conv(src, w) + bias, written in place by oneDNN (dst may be a strided view of y).
void conv_add(at::Tensor& dst, const at::Tensor& src, const at::Tensor& w, const std::optional<at::Tensor>& bias,
              at::IntArrayRef stride, at::IntArrayRef padding) {
  const int64_t dil[3] = {1, 1, 1};
  onednn_conv_add()->call(dst, src, w, bias, padding, stride, dil, 1, "add", std::nullopt, std::nullopt,
                          c10::List<std::optional<at::Scalar>>(), std::nullopt);
}

// Channels-last copies of NCDHW x's frames for consecutive chunks. With N = 1 a channels-last frame is
// one contiguous block, so the k_t - s_t frames two chunks share are moved to the front of the buffer
// (a memmove) instead of being converted from NCDHW again.
class ChannelsLastFrames {
 public:
  explicit ChannelsLastFrames(const at::Tensor& x) : x_(x) {}

  // x frames [f0, f1) as a dense channels-last tensor, valid until the next call.
  at::Tensor get(int64_t f0, int64_t f1) {
    if (x_.size(0) != 1) return time_slice(x_, f0, f1 - f0).contiguous(at::MemoryFormat::ChannelsLast3d);
    if (!buf_.defined() || buf_.size(2) < f1 - f0) {
      buf_ = at::empty({1, x_.size(1), f1 - f0, x_.size(3), x_.size(4)},
                       x_.options().memory_format(at::MemoryFormat::ChannelsLast3d));
      have0_ = have1_ = 0;
    }
    const int64_t frame = x_.size(1) * x_.size(3) * x_.size(4) * x_.element_size();
    char* base = static_cast<char*>(buf_.data_ptr());
    int64_t kept = 0;
    if (f0 >= have0_ && f0 < have1_) {  // frames [f0, have1_) are already converted
      kept = std::min(have1_, f1) - f0;
      std::memmove(base, base + (f0 - have0_) * frame, kept * frame);
    }
    if (f0 + kept < f1) buf_.narrow(2, kept, f1 - f0 - kept).copy_(x_.narrow(2, f0 + kept, f1 - f0 - kept));
    have0_ = f0;
    have1_ = f1;
    return time_slice(buf_, 0, f1 - f0);
  }

 private:
  const at::Tensor& x_;
  at::Tensor buf_;
  int64_t have0_ = 0, have1_ = 0;
};

}  // namespace

at::Tensor aten_forward(const Geometry& g, const at::Tensor& x, const at::Tensor& weight,
                        const std::optional<at::Tensor>& bias, const std::optional<at::Tensor>& cache) {
  const auto fmt = x.suggest_memory_format();
  const bool channels_last = fmt == at::MemoryFormat::ChannelsLast3d;
  // The output follows x's layout: ATen would pick channels-last for a channels-last weight too.
  const at::Tensor w = weight.contiguous(fmt);
  at::Tensor y = empty_output({g.n, g.o, g.t_out, g.h_out, g.w_out}, x.options().memory_format(fmt));
  // In place, oneDNN writes y directly. Channels-last (x read in place when N = 1) then needs no
  // temporaries at all: one call. NCDHW still goes in chunks (an NCDHW time slice is not dense, and
  // oneDNN's reorders of a whole NCDHW call cost more memory than the padded copy saves), each frame
  // converted to channels-last once (ChannelsLastFrames): 1.04-1.10x pad + conv3d at 9 and 17 frames
  // (2 threads), against 0.9-1.0x when oneDNN copied and reordered each NCDHW chunk itself.
  const bool in_place = direct_onednn(x) && onednn_conv_add().has_value();
  const at::Tensor w_cl = in_place && !channels_last ? weight.contiguous(at::MemoryFormat::ChannelsLast3d) : w;
  const int64_t n_bulk = g.t_out - g.j_bulk;
  const int64_t chunk = in_place && channels_last ? std::max<int64_t>(n_bulk, 1)
                                                  : bulk_chunk(g, x.element_size(), channels_last);
  {
    ChannelsLastFrames frames(x);  // freed before the head pieces, which have temporaries of their own
    for (int64_t ja = g.j_bulk; ja < g.t_out; ja += chunk) {
      const int64_t jb = std::min(ja + chunk, g.t_out);
      at::Tensor dst = y.narrow(2, ja, jb - ja);
      const at::Tensor src = bulk_source(g, x, ja, jb);
      if (in_place) {
        const int64_t f0 = ja * g.st - (g.kt - 1);
        conv_add(dst.zero_(), channels_last ? src : frames.get(f0, f0 + src.size(2)), w_cl, bias,
                 {g.st, g.sh, g.sw}, {0, g.ph, g.pw});
      } else {
        dst.copy_(conv(src, w, bias, {g.st, g.sh, g.sw}, {0, g.ph, g.pw}));
      }
    }
  }
  if (g.j_bulk > 0) {
    at::Tensor head = y.narrow(2, 0, g.j_bulk);
    if (bias) {
      head.copy_(bias->view({1, g.o, 1, 1, 1}).expand_as(head));
    } else {
      head.zero_();
    }
    for (const Piece& pc : pieces(g)) {
      at::Tensor dst = y.narrow(2, pc.j, 1);
      if (in_place) {
        conv_add(dst, piece_source(pc, x, cache), piece_weight(pc, w), std::nullopt, {1, g.sh, g.sw}, {0, g.ph, g.pw});
      } else {
        dst.add_(conv_frames(g, piece_source(pc, x, cache), piece_weight(pc, w)));
      }
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
  const int64_t chunk = bulk_chunk(g, x.element_size(), fmt == at::MemoryFormat::ChannelsLast3d);
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
    (pc.source == Piece::kX ? grad_x : grad_cache).narrow(2, pc.f0, pc.len).add_(gsrc);
    add_piece_weight_grad(pc, grad_w, gw.to(acc));
  }
  return {grad_x, grad_w.to(weight.scalar_type()).contiguous(), grad_b, grad_cache};
}

}  // namespace lavin_fast::conv
