// Sizes of one causal_conv3d call and the split of its work used by the ATen composite
// (causal_conv3d_aten.cpp): output frames whose window lies inside x (the bulk) from convolutions
// over views of x, the first ceil((k_t - 1) / s_t) frames (the head) from per-frame pieces.
#pragma once

#include <cstdint>
#include <vector>

#include "conv/causal_conv3d_params.h"

namespace lavin_fast::conv {

struct Geometry {
  int64_t n, c, t, h, w;
  int64_t o, kt, kh, kw;
  int64_t st, sh, sw, ph, pw;
  int64_t t_out, h_out, w_out;
  TemporalPad pad;
  // Output frames [j_bulk, t_out) read only x frames: output j reads x frames [j*st - (kt - 1), j*st].
  int64_t j_bulk;
};

// Output frame j gets conv(source frames [f0, f0 + len), weights): the weights are taps
// [tap0, tap0 + summed) summed into one, then taps [tap0 + summed, tap0 + summed + len - 1).
struct Piece {
  enum Source { kX, kCache } source;
  int64_t j;
  int64_t f0;      // first source frame
  int64_t tap0;    // first weight tap
  int64_t len;     // source frames
  int64_t summed;  // leading taps summed into the first weight frame (1: none)
};

Geometry make_geometry(int64_t n, int64_t c, int64_t t, int64_t h, int64_t w, int64_t o, int64_t kt,
                       int64_t kh, int64_t kw, int64_t st, int64_t sh, int64_t sw, int64_t ph, int64_t pw,
                       TemporalPad pad);

// The head frames' convolutions: for output j < j_bulk, its taps on the causal padding (one piece)
// and on x (another). At most 2 * j_bulk pieces.
std::vector<Piece> pieces(const Geometry& g);

}  // namespace lavin_fast::conv
