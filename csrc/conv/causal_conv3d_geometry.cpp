#include "conv/causal_conv3d_geometry.h"

#include <algorithm>

namespace lavin_fast::conv {

Geometry make_geometry(int64_t n, int64_t c, int64_t t, int64_t h, int64_t w, int64_t o, int64_t kt,
                       int64_t kh, int64_t kw, int64_t st, int64_t sh, int64_t sw, int64_t ph, int64_t pw,
                       TemporalPad pad) {
  // A stride past the (padded) extent keeps one output position, the first window, whatever its value:
  // clamp it there, which changes no output and keeps the sizes oneDNN and the kernels see sane (a
  // stride of 2^40 made oneDNN refuse its memory descriptor).
  st = std::min(st, t);
  sh = std::min(sh, h + 2 * ph - kh + 1);
  sw = std::min(sw, w + 2 * pw - kw + 1);
  Geometry g{n, c, t, h, w, o, kt, kh, kw, st, sh, sw, ph, pw, 0, 0, 0, pad, 0};
  // The padded sequence has kt - 1 + t frames; output j reads padded frames [j*st, j*st + kt).
  g.t_out = (t - 1) / st + 1;
  g.h_out = (h + 2 * ph - kh) / sh + 1;
  g.w_out = (w + 2 * pw - kw) / sw + 1;
  g.j_bulk = std::min(g.t_out, (kt - 1 + st - 1) / st);
  return g;
}

std::vector<Piece> pieces(const Geometry& g) {
  std::vector<Piece> out;
  const int64_t lag = g.kt - 1;  // padded frame p holds x frame p - lag
  for (int64_t j = 0; j < g.j_bulk; ++j) {
    const int64_t p0 = j * g.st;  // < lag: the window starts in the padding
    const int64_t n_pad = std::min(lag - p0, g.kt);  // taps t in [0, n_pad) read the padding
    const int64_t f_hi = std::min(g.t - 1, p0);        // taps on x: frames [0, f_hi]
    if (g.pad == TemporalPad::kReplicate) {
      // Every padding tap reads x's first frame, as does the first tap on x: one convolution over
      // x frames [0, f_hi] whose first weight frame sums those n_pad + 1 taps (T = 1: the whole
      // output at 1 / k_t of the work).
      out.push_back({Piece::kX, j, 0, 0, f_hi + 1, n_pad + 1});
      continue;
    }
    if (g.pad == TemporalPad::kCache) out.push_back({Piece::kCache, j, p0, 0, n_pad, 1});
    out.push_back({Piece::kX, j, 0, n_pad, f_hi + 1, 1});
  }
  return out;
}

}  // namespace lavin_fast::conv
