// Sizes of one causal_conv3d call and the split of its work used by the ATen composite
// (causal_conv3d_aten.cpp): one convolution over a view of x for the bulk, plus per-frame pieces
// for the taps that view does not cover.
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
  // The bulk convolution reads x frames [0, t_main) with kt - 1 zero frames on both sides in time,
  // which yields exactly t_out frames. 0 when T < k_t: then every tap is a piece.
  int64_t t_main;
};

// Output frame j gets conv(source frames [f0, f0 + len), weight taps [tap0, tap0 + len)).
struct Piece {
  enum Source { kX, kXFirstSummed, kCache } source;
  int64_t j;
  int64_t f0;    // first source frame (kXFirstSummed: always x frame 0, len 1 after summing)
  int64_t tap0;  // first weight tap
  int64_t len;   // number of taps (kXFirstSummed: taps summed into one)
};

Geometry make_geometry(int64_t n, int64_t c, int64_t t, int64_t h, int64_t w, int64_t o, int64_t kt,
                       int64_t kh, int64_t kw, int64_t st, int64_t sh, int64_t sw, int64_t ph, int64_t pw,
                       TemporalPad pad);

// The taps of each output frame that the bulk convolution misses: those in the causal padding (frames
// before x) and those reading x frames >= t_main. At most 2 * ceil((k_t - 1) / s_t) + 1 frames.
std::vector<Piece> pieces(const Geometry& g);

}  // namespace lavin_fast::conv
