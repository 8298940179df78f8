// Why this shape: a padded copy of x is what the causal convolution must avoid. Output frames whose
// window lies inside x (the bulk: all but the first ceil((k_t - 1) / s_t)) come from convolutions over
// views of x; the head frames from per-frame pieces (Piece, causal_conv3d_geometry.h): replicated
// first-frame taps as one convolution with summed weights, cache taps on views of the cache. The work
// is exactly the taps on real data.
//
// fp32 on the CPU: oneDNN's convolution with a fused "add" into its destination, which ATen runs in
// place only for channels-last tensors. Channels-last x: the bulk is one call per sample writing
// straight into y, nothing allocated beyond it. NCDHW x: chunks of output frames, each computed
// channels-last from frames converted once and transposed into y (the conversions by a vector
// transpose, common/transpose_cpu.h). Other dtypes and devices: ATen convolutions into fresh tensors,
// copied into y chunk by chunk.
#include "conv/causal_conv3d_aten.h"

#include <ATen/ATen.h>
#include <ATen/Config.h>

#include <algorithm>
#include <array>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <string_view>

#include "common/alloc.h"
#include "common/torch_op.h"
#include "common/transpose_cpu.h"

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

// Weight taps [tap0, tap0 + n) summed into one frame (O, C, 1, kh, kw), added in fp32 (float64 for
// float64) and rounded once. Slice adds: at::sum over the tap dimension ran at about 2 GB/s.
at::Tensor sum_taps(const at::Tensor& weight, int64_t tap0, int64_t n) {
  if (n == 1) return weight.narrow(2, tap0, 1);
  at::Tensor acc = weight.narrow(2, tap0, 1).to(acc_type(weight.scalar_type())) + weight.narrow(2, tap0 + 1, 1);
  for (int64_t i = 2; i < n; ++i) acc.add_(weight.narrow(2, tap0 + i, 1));
  return acc.to(weight.scalar_type());
}

// The weight frames of a piece: its summed taps, then the rest.
at::Tensor piece_weight(const Piece& pc, const at::Tensor& weight) {
  if (pc.summed == 1) return weight.narrow(2, pc.tap0, pc.len);
  const at::Tensor first = sum_taps(weight, pc.tap0, pc.summed);
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

// -> grad_src, grad_w of conv_frames, as one 2-D convolution backward per source frame: ATen sends
// batch-1 3-D inputs with N*C*T*H <= 20480 (a 2-frame piece of a 64 x 64 clip at 128 channels) to
// slow_conv3d, 90 ms there against 2 x 13 ms for its two frames through oneDNN.
std::tuple<at::Tensor, at::Tensor> conv_frames_backward(const Geometry& g, const at::Tensor& grad_out,
                                                        const at::Tensor& src, const at::Tensor& w) {
  std::vector<at::Tensor> gs, gw;
  for (int64_t k = 0; k < src.size(2); ++k) {
    auto [a, b, unused] = at::convolution_backward(grad_out.select(2, 0), src.select(2, k), w.select(2, k),
                                                   std::nullopt, {g.sh, g.sw}, {g.ph, g.pw}, {1, 1}, false, {0, 0}, 1,
                                                   {true, true, false});
    gs.push_back(a.unsqueeze(2));
    gw.push_back(b.unsqueeze(2));
  }
  if (gs.size() == 1) return {gs[0], gw[0]};
  return {at::cat(gs, 2), at::cat(gw, 2)};
}

// Bulk output frames per call for chunks of about 1/divisor of the bulk's output, clamped to
// [min_bytes, max_bytes] of output; at least one frame, at most the whole bulk.
int64_t chunk_frames(const Geometry& g, int64_t elem_size, int64_t divisor, int64_t min_bytes, int64_t max_bytes) {
  const int64_t n_bulk = g.t_out - g.j_bulk;
  const int64_t frame_bytes = std::max<int64_t>(g.n * g.o * g.h_out * g.w_out * elem_size, 1);
  const int64_t target = std::clamp(n_bulk * frame_bytes / divisor, min_bytes, max_bytes);
  return std::clamp<int64_t>(target / frame_bytes, 1, std::max<int64_t>(n_bulk, 1));
}

// Bulk output frames per convolution call of forward_aten (other dtypes; the fp32 forward uses
// onednn_chunk, the backward one call). A chunk's temporaries: its output, and for NCDHW also a
// dense copy of its input frames plus oneDNN's reorder of them to its blocked layout, which makes small
// NCDHW chunks slow (128 channels, 9 frames of 128 x 128 fp32, the 7 bulk frames: 3.4 s in 1-frame
// chunks, 2.5 s in 2-frame chunks, 2.1 s in one call). So: NCDHW, about 1/4 of the output per call
// (at least 16 MiB). Channels-last (input read in place): about 1/16 of the output but at least
// 24 MiB (3 frames of 128 channels x 128 x 128 fp32: 1-frame chunks measured 15-25% slower over 17
// frames, at 16 MiB more peak). Small tensors go in one call.
int64_t bulk_chunk(const Geometry& g, int64_t elem_size, bool channels_last) {
  return channels_last ? chunk_frames(g, elem_size, 16, int64_t{24} << 20, std::numeric_limits<int64_t>::max())
                       : chunk_frames(g, elem_size, 4, int64_t{16} << 20, std::numeric_limits<int64_t>::max());
}

// Output frames per chunk of the fp32 forward on NCDHW x, whose temporaries are the chunk's input
// frames converted to channels-last and its channels-last output: about 1/8 of the output, between
// 1 and 8 MiB (at least a frame), so they stay a fraction of the padded copy they replace at every
// size (a fixed 24 MiB minimum made a 32-channel 64 x 64 ST-VAE layer hold 49 MiB of temporaries for a
// 33 MiB activation). One-frame chunks cost little: oneDNN parallelises within a frame, and the
// k_t - s_t frames chunks share are moved, not converted again.
int64_t onednn_chunk(const Geometry& g, int64_t elem_size) {
  return chunk_frames(g, elem_size, 8, int64_t{1} << 20, int64_t{8} << 20);
}

// x frames read by output frames [ja, jb): [ja*st - (kt - 1), (jb - 1)*st + 1).
at::Tensor bulk_source(const Geometry& g, const at::Tensor& x, int64_t ja, int64_t jb) {
  const int64_t f0 = ja * g.st - (g.kt - 1);
  return time_slice(x, f0, (jb - 1) * g.st + 1 - f0);
}

// oneDNN's convolution with a fused "add" of a destination it writes in place (PyTorch ships it as
// mkldnn::_convolution_pointwise_.binary, for inductor's conv + add fusion). A sample's time slice of a
// channels-last y is a valid destination, so the bulk is written straight into y: no output-sized
// temporary and no copy.
using ConvAddFn = at::Tensor&(at::Tensor&, const at::Tensor&, const at::Tensor&, const std::optional<at::Tensor>&,
                              at::IntArrayRef, at::IntArrayRef, at::IntArrayRef, int64_t, std::string_view,
                              std::optional<at::Scalar>, std::optional<std::string_view>,
                              c10::List<std::optional<at::Scalar>>, std::optional<std::string_view>);

const std::optional<c10::TypedOperatorHandle<ConvAddFn>>& onednn_conv_add() {
  static const auto op = find_op<ConvAddFn>("mkldnn::_convolution_pointwise_", "binary");
  return op;
}

// dst += conv(src, w) + bias, written in place by oneDNN (dst: channels-last contiguous, such as one
// sample's time slice of a channels-last y).
void conv_add(at::Tensor& dst, const at::Tensor& src, const at::Tensor& w, const std::optional<at::Tensor>& bias,
              at::IntArrayRef stride, at::IntArrayRef padding) {
  // ATen fuses the add only into a channels-last contiguous destination; any other gets a fresh
  // convolution (ATen's choice of algorithm, slow_conv3d for small inputs) plus add_.
  TORCH_INTERNAL_ASSERT(dst.is_contiguous(at::MemoryFormat::ChannelsLast3d),
                        "conv_add: oneDNN writes in place only into a channels-last destination");
  const int64_t dil[3] = {1, 1, 1};
  onednn_conv_add()->call(dst, src, w, bias, padding, stride, dil, 1, "add", std::nullopt, std::nullopt,
                          c10::List<std::optional<at::Scalar>>(), std::nullopt);
}

// dst = src for two (N, C, F, H, W) fp32 tensors of which one is channels-last and the other has dense
// (H, W) planes: per frame a (C, H*W) <-> (H*W, C) transpose by the vector kernel (ATen's strided copy
// converts at about 2 GB/s). Other layouts and dtypes: ATen's copy.
void copy_frames(const at::Tensor& dst, const at::Tensor& src) {
  const auto planes_dense = [](const at::Tensor& t) { return t.stride(4) == 1 && t.stride(3) == t.size(4); };
  const auto channels_last = [](const at::Tensor& t) {
    return t.stride(1) == 1 && t.stride(4) == t.size(1) && t.stride(3) == t.size(4) * t.size(1);
  };
  const bool to_cl = planes_dense(src) && channels_last(dst), from_cl = channels_last(src) && planes_dense(dst);
  if (src.scalar_type() != at::kFloat || dst.scalar_type() != at::kFloat || !src.is_cpu() || !(to_cl || from_cl) ||
      src.size(1) == 1) {
    dst.copy_(src);
    return;
  }
  const int64_t c = src.size(1), plane = src.size(3) * src.size(4);
  for (int64_t n = 0; n < src.size(0); ++n) {
    cpu::TransposeParams p{};
    p.src = src.data_ptr<float>() + n * src.stride(0);
    p.dst = dst.data_ptr<float>() + n * dst.stride(0);
    p.batch = src.size(2);
    p.src_batch = src.stride(2);
    p.dst_batch = dst.stride(2);
    p.rows = to_cl ? c : plane;
    p.cols = to_cl ? plane : c;
    p.lds = to_cl ? src.stride(1) : c;
    p.ldd = to_cl ? c : dst.stride(1);
    cpu::transpose_batched(p);
  }
}

// Source frames [f0, f0 + len) of x (or the cache) as a channels-last tensor: a view when it is
// channels-last already.
at::Tensor frames_channels_last(const at::Tensor& s, int64_t f0, int64_t len) {
  if (s.suggest_memory_format() == at::MemoryFormat::ChannelsLast3d) return time_slice(s, f0, len);
  at::Tensor t = at::empty({s.size(0), s.size(1), len, s.size(3), s.size(4)},
                           s.options().memory_format(at::MemoryFormat::ChannelsLast3d));
  copy_frames(t, s.narrow(2, f0, len));
  return t;
}

// Channels-last copies of NCDHW x's frames for consecutive chunks. With N = 1 a channels-last frame is
// one contiguous block, so the k_t - s_t frames two chunks share are moved to the front of the buffer
// (a memmove) instead of being converted from NCDHW again.
class ChannelsLastFrames {
 public:
  explicit ChannelsLastFrames(const at::Tensor& x) : x_(x) {}

  // x frames [f0, f1) as a dense channels-last tensor, valid until the next call.
  at::Tensor get(int64_t f0, int64_t f1) {
    if (x_.size(0) != 1) return frames_channels_last(x_, f0, f1 - f0);
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
    if (f0 + kept < f1) copy_frames(buf_.narrow(2, kept, f1 - f0 - kept), x_.narrow(2, f0 + kept, f1 - f0 - kept));
    have0_ = f0;
    have1_ = f1;
    return time_slice(buf_, 0, f1 - f0);
  }

 private:
  const at::Tensor& x_;
  at::Tensor buf_;
  int64_t have0_ = 0, have1_ = 0;
};

// w in oneDNN's blocked layout. Given a plain weight with a channels-last source, ATen copies the
// weight to channels-last and oneDNN reorders that copy in every call: two weight-sized temporaries
// (54 MiB for a 512-channel 3x3x3 layer, more than such a layer's activations at 8 x 8). PyTorch's
// mkldnn::_reorder_convolution_weight without an input size reorders a plain weight in place of a
// copy (with one, it first copies to channels-last), and oneDNN then uses the packed weight as is
// for channels-last sources (measured: no further temporary, same speed). A channels-last weight
// goes the channels-last way, which reads it in place.
using ReorderWeightFn = at::Tensor(const at::Tensor&, at::IntArrayRef, at::IntArrayRef, at::IntArrayRef, int64_t,
                                   at::OptionalIntArrayRef);

at::Tensor prepack(const at::Tensor& w, at::IntArrayRef src_sizes, at::IntArrayRef stride, at::IntArrayRef padding) {
  static const auto reorder = find_op<ReorderWeightFn>("mkldnn::_reorder_convolution_weight");
  const int64_t dilation[3] = {1, 1, 1};
  const bool cl = w.is_contiguous(at::MemoryFormat::ChannelsLast3d) && !w.is_contiguous();
  if (reorder) {
    return reorder->call(cl ? w : w.contiguous(), padding, stride, dilation, 1,
                         cl ? at::OptionalIntArrayRef(src_sizes) : at::OptionalIntArrayRef(std::nullopt));
  }
  return at::mkldnn_reorder_conv3d_weight(w.contiguous().to_mkldnn(), padding, stride, dilation, 1, src_sizes);
}

// The head frames either as pieces (each with weights of its own, packed per call) or as one
// convolution over a small padded copy of the first frames with the bulk's packed weight. Pieces do
// the fewest multiply-adds (a 1-frame clip costs 1/k_t of a padded one) but pack about a weight's
// worth of summed and split taps per call; a padded head computes all k_t taps of every head frame.
// With small frames and many channels (the released encoder's 512-channel layers at 4 x 4 and 8 x 8)
// the weight work dominates. Measured break-even (128-512 channels, 4 x 4 to 64 x 64, 17 frames, 1
// and 2 threads): about 100 extra multiply-add flops per weight byte; padded was 1.1-1.4x faster
// below it, pieces up to 1.2x above. Clips without a bulk (T <= the head) always use pieces: there the
// padded head measured 2-8x slower. LAVIN_FAST_CONV_HEAD=pieces|padded overrides (tests use it).
bool head_from_padded_frames(const Geometry& g) {
  if (const char* e = std::getenv("LAVIN_FAST_CONV_HEAD"); e && *e) {
    TORCH_CHECK(std::string_view(e) == "pieces" || std::string_view(e) == "padded",
                "LAVIN_FAST_CONV_HEAD must be 'pieces' or 'padded', got '", e, "'");
    return std::string_view(e) == "padded";
  }
  if (g.j_bulk >= g.t_out) return false;
  int64_t piece_taps = 0;
  for (const Piece& pc : pieces(g)) piece_taps += pc.len;
  const int64_t extra_taps = g.j_bulk * g.kt - piece_taps;
  const double extra_flops = 2.0 * extra_taps * g.n * g.o * g.c * g.kh * g.kw * g.h_out * g.w_out;
  const double weight_bytes = 4.0 * g.o * g.c * g.kt * g.kh * g.kw;
  return extra_flops <= 100.0 * weight_bytes;
}

// fp32 on the CPU: oneDNN convolutions writing y in place (conv_add), channels-last throughout, with
// prepacked weights. Channels-last x: the bulk is one call per sample into y. NCDHW x: chunks of output
// frames, each computed channels-last from frames converted once (ChannelsLastFrames) and transposed
// into y.
at::Tensor forward_onednn(const Geometry& g, const at::Tensor& x, const at::Tensor& weight,
                          const std::optional<at::Tensor>& bias, const std::optional<at::Tensor>& cache) {
  const auto cl = at::MemoryFormat::ChannelsLast3d;
  const bool x_cl = x.suggest_memory_format() == cl;
  const std::array<int64_t, 3> stride = {g.st, g.sh, g.sw}, padding = {0, g.ph, g.pw}, frame_stride = {1, g.sh, g.sw};
  const int64_t chunk = x_cl ? g.t_out - g.j_bulk : onednn_chunk(g, x.element_size());
  const auto src_sizes = [&](int64_t n, int64_t frames) { return std::vector<int64_t>{n, g.c, frames, g.h, g.w}; };
  // Packed before y exists, so the packing temporaries never add to the peak.
  at::Tensor w_bulk;
  if (g.j_bulk < g.t_out) {
    w_bulk = prepack(weight, src_sizes(x_cl ? 1 : g.n, (chunk - 1) * g.st + g.kt), stride, padding);
  }
  const auto fmt = x_cl ? cl : at::MemoryFormat::Contiguous;
  at::Tensor y = empty_output({g.n, g.o, g.t_out, g.h_out, g.w_out}, x.options().memory_format(fmt));
  if (x_cl) {
    // A time slice of y is channels-last contiguous only for one sample: one call per sample, x read
    // in place, nothing allocated beyond y.
    for (int64_t n = 0; n < g.n && g.j_bulk < g.t_out; ++n) {
      at::Tensor dst = y.narrow(0, n, 1).narrow(2, g.j_bulk, g.t_out - g.j_bulk);
      conv_add(dst.zero_(), bulk_source(g, x.narrow(0, n, 1), g.j_bulk, g.t_out), w_bulk, bias, stride, padding);
    }
  } else {
    ChannelsLastFrames frames(x);
    at::Tensor out;  // a chunk's output, channels-last
    for (int64_t ja = g.j_bulk; ja < g.t_out; ja += chunk) {
      const int64_t jb = std::min(ja + chunk, g.t_out);
      if (!out.defined() || out.size(2) != jb - ja) {
        out = at::empty({g.n, g.o, jb - ja, g.h_out, g.w_out}, y.options().memory_format(cl));
      }
      const int64_t f0 = ja * g.st - (g.kt - 1);
      conv_add(out.zero_(), frames.get(f0, (jb - 1) * g.st + 1), w_bulk, bias, stride, padding);
      copy_frames(y.narrow(2, ja, jb - ja), out);
    }
  }
  if (g.j_bulk > 0 && head_from_padded_frames(g)) {
    // Padded head frames through the bulk's packed weight (see head_from_padded_frames).
    const int64_t frames = (g.j_bulk - 1) * g.st + g.kt;
    at::Tensor src = at::empty({g.n, g.c, frames, g.h, g.w}, x.options().memory_format(cl));
    for (int64_t p = 0; p < frames; ++p) {
      at::Tensor f = src.narrow(2, p, 1);
      if (p >= g.kt - 1) {
        copy_frames(f, x.narrow(2, p - (g.kt - 1), 1));
      } else if (cache) {
        copy_frames(f, cache->narrow(2, p, 1));
      } else if (g.pad == TemporalPad::kReplicate) {
        copy_frames(f, x.narrow(2, 0, 1));
      } else {
        f.zero_();
      }
    }
    if (!w_bulk.defined()) w_bulk = prepack(weight, src.sizes(), stride, padding);
    at::Tensor dst = y.narrow(2, 0, g.j_bulk);
    const bool direct = dst.is_contiguous(cl);
    at::Tensor out = direct ? dst : at::empty(dst.sizes(), y.options().memory_format(cl));
    conv_add(out.zero_(), src, w_bulk, bias, stride, padding);
    if (!direct) copy_frames(dst, out);
    return y;
  }
  w_bulk.reset();
  // The head, per output frame: its pieces summed into the frame of y (or a channels-last buffer). A
  // piece runs as its summed first tap over one frame, then its remaining taps, so no weight larger
  // than len - 1 taps is packed while y exists.
  const std::vector<Piece> all = pieces(g);
  at::Tensor buf;
  for (int64_t j = 0; j < g.j_bulk; ++j) {
    at::Tensor dst = y.narrow(2, j, 1);
    const bool direct = dst.is_contiguous(cl);
    if (!direct && !buf.defined()) buf = at::empty(dst.sizes(), y.options().memory_format(cl));
    at::Tensor acc = direct ? dst : buf;
    if (bias) {
      acc.copy_(bias->view({1, g.o, 1, 1, 1}).expand_as(acc));
    } else {
      acc.zero_();
    }
    for (const Piece& pc : all) {
      if (pc.j != j) continue;
      const at::Tensor& s = pc.source == Piece::kX ? x : *cache;
      conv_add(acc, frames_channels_last(s, pc.f0, 1),
               prepack(sum_taps(weight, pc.tap0, pc.summed), src_sizes(g.n, 1), frame_stride, padding), std::nullopt,
               frame_stride, padding);
      if (pc.len > 1) {
        conv_add(acc, frames_channels_last(s, pc.f0 + 1, pc.len - 1),
                 prepack(weight.narrow(2, pc.tap0 + pc.summed, pc.len - 1), src_sizes(g.n, pc.len - 1), frame_stride,
                         padding),
                 std::nullopt, frame_stride, padding);
      }
    }
    if (!direct) copy_frames(dst, acc);
  }
  return y;
}

// Other dtypes and devices (and fp32 without oneDNN): ATen convolutions into fresh tensors, copied
// into y chunk by chunk.
void forward_aten(const Geometry& g, const at::Tensor& x, const at::Tensor& weight,
                  const std::optional<at::Tensor>& bias, const std::optional<at::Tensor>& cache, at::Tensor& y) {
  const auto fmt = x.suggest_memory_format();
  const at::Tensor w = weight.contiguous(fmt);
  const int64_t chunk = bulk_chunk(g, x.element_size(), fmt == at::MemoryFormat::ChannelsLast3d);
  for (int64_t ja = g.j_bulk; ja < g.t_out; ja += chunk) {
    const int64_t jb = std::min(ja + chunk, g.t_out);
    y.narrow(2, ja, jb - ja).copy_(conv(bulk_source(g, x, ja, jb), w, bias, {g.st, g.sh, g.sw}, {0, g.ph, g.pw}));
  }
  if (g.j_bulk == 0) return;
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

}  // namespace

at::Tensor aten_forward(const Geometry& g, const at::Tensor& x, const at::Tensor& weight,
                        const std::optional<at::Tensor>& bias, const std::optional<at::Tensor>& cache) {
  if (direct_onednn(x) && onednn_conv_add().has_value()) return forward_onednn(g, x, weight, bias, cache);
  // The output follows x's layout (ATen would pick channels-last for a channels-last weight too).
  const auto fmt = x.suggest_memory_format();
  at::Tensor y = empty_output({g.n, g.o, g.t_out, g.h_out, g.w_out}, x.options().memory_format(fmt));
  forward_aten(g, x, weight, bias, cache, y);
  return y;
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> aten_backward(
    const Geometry& g, const at::Tensor& grad_y, const at::Tensor& x, const at::Tensor& weight, bool has_bias,
    const std::optional<at::Tensor>& cache) {
  const auto fmt = x.suggest_memory_format();
  const at::ScalarType acc = acc_type(weight.scalar_type());
  const at::Tensor w = weight.contiguous(fmt);
  at::Tensor grad_w = at::zeros(weight.sizes(), weight.options().dtype(acc));
  at::Tensor grad_b = has_bias ? grad_y.sum({0, 2, 3, 4}, false, acc).to(weight.scalar_type()) : at::empty({0}, x.options());
  at::Tensor grad_cache = cache ? at::zeros_like(*cache) : at::empty({0}, x.options());
  // The bulk in one call: its input is x itself (dense, no copy) and its input gradient becomes grad_x
  // (no zeroing, no add). Chunks bounded the temporaries of oneDNN's reorders but cost a zero fill, an
  // add and a dense copy of every chunk's input (128 channels, 9 frames of 128 x 128: 0.95-1.0x pad +
  // conv3d forward + backward in chunks). One call's temporaries are pad + conv3d's minus the padded
  // frames, plus (NCDHW) a dense copy of grad_y's bulk frames.
  at::Tensor grad_x;
  if (g.j_bulk < g.t_out) {
    const at::Tensor src = bulk_source(g, x, g.j_bulk, g.t_out);
    auto [gsrc, gw, unused] = at::convolution_backward(
        time_slice(grad_y, g.j_bulk, g.t_out - g.j_bulk), src, w, std::nullopt, {g.st, g.sh, g.sw},
        {0, g.ph, g.pw}, {1, 1, 1}, false, {0, 0, 0}, 1, {true, true, false});
    grad_w.add_(gw.to(acc));
    const int64_t f0 = g.j_bulk * g.st - (g.kt - 1);
    if (f0 == 0 && src.size(2) == g.t && gsrc.is_contiguous(fmt)) {
      grad_x = gsrc;
    } else {
      grad_x = empty_output(x.sizes(), x.options().memory_format(fmt)).zero_();
      grad_x.narrow(2, f0, src.size(2)).add_(gsrc);
    }
  } else {
    grad_x = empty_output(x.sizes(), x.options().memory_format(fmt)).zero_();
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
