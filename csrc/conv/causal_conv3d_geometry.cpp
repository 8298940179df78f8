#include "conv/causal_conv3d_geometry.h"

#include <algorithm>

namespace lavin_fast::conv {

Geometry make_geometry(int64_t n, int64_t c, int64_t t, int64_t h, int64_t w, int64_t o, int64_t kt,
                       int64_t kh, int64_t kw, int64_t st, int64_t sh, int64_t sw, int64_t ph, int64_t pw,
                       TemporalPad pad) {
  Geometry g{n, c, t, h, w, o, kt, kh, kw, st, sh, sw, ph, pw, 0, 0, 0, pad, 0};
  // The padded sequence has kt - 1 + t frames; output j reads padded frames [j*st, j*st + kt).
  g.t_out = (t - 1) / st + 1;
  g.h_out = (h + 2 * ph - kh) / sh + 1;
  g.w_out = (w + 2 * pw - kw) / sw + 1;
  g.t_main = std::max<int64_t>(t - (kt - 1), 0);
  return g;
}

std::vector<Piece> pieces(const Geometry& g) {
  std::vector<Piece> out;
  const int64_t lag = g.kt - 1;  // padded frame p holds x frame p - lag
  for (int64_t j = 0; j < g.t_out; ++j) {
    const int64_t p0 = j * g.st;
    // Taps in the causal padding: t in [0, n_pad).
    int64_t n_pad = std::clamp<int64_t>(lag - p0, 0, g.kt);
    // Taps on x frames the bulk convolution does not read: f in [f_lo, f_hi].
    int64_t f_lo = std::max(g.t_main, p0 - lag);
    const int64_t f_hi = std::min(g.t - 1, p0);
    if (n_pad > 0 && g.pad == TemporalPad::kReplicate) {
      // Every padding tap reads x's first frame: one convolution with the taps' summed weights,
      // also taking the tap on x frame 0 when the bulk does not (T < k_t; all of it for T = 1).
      int64_t taps = n_pad;
      if (f_lo == 0 && f_hi >= 0) {
        ++taps;
        f_lo = 1;
      }
      out.push_back({Piece::kXFirstSummed, j, 0, 0, taps});
    } else if (n_pad > 0 && g.pad == TemporalPad::kCache) {
      out.push_back({Piece::kCache, j, p0, 0, n_pad});
    }
    if (f_lo <= f_hi) out.push_back({Piece::kX, j, f_lo, f_lo + lag - p0, f_hi - f_lo + 1});
  }
  return out;
}

}  // namespace lavin_fast::conv
