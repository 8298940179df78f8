// simt/tensor_core_host.h: ldmatrix and mma.m16n8k16 layouts. Operands go from an emulated
// shared-memory tile to fragments exactly as a kernel loads them (ldmatrix with the per-lane row
// addresses a kernel computes), through the mma, and the result is gathered from the C/D layout and
// compared with a float64 product. Per-lane element checks pin ldmatrix to the PTX formulas, and
// deliberately wrong layouts must be rejected (the checks can fail).
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <random>

#include "simt/tensor_core_host.h"
#include "tests/expect.h"

using lf::emu::HalfKind;

namespace {

// A shared-memory tile of 16-bit values with a padded row stride (as kernels pad to avoid bank
// conflicts), so a confusion between rows and strides shows. Rows stay 16-byte aligned.
template <int Rows, int Cols>
struct Tile {
  static constexpr int kStride = Cols + 8;
  alignas(16) uint16_t bits[Rows][kStride];
  double value[Rows][Cols];  // the exact value of each element

  template <HalfKind K>
  void randomize(std::mt19937& rng) {
    std::uniform_real_distribution<float> dist(-2.f, 2.f);
    for (int r = 0; r < Rows; ++r)
      for (int c = 0; c < kStride; ++c) {
        const uint16_t h = lf::emu::float_to_half_bits<K>(dist(rng));
        bits[r][c] = c < Cols ? h : 0x7fff;  // padding is NaN: reading it poisons the product
        if (c < Cols) value[r][c] = lf::emu::half_bits_to_float<K>(h);
      }
  }
  const void* at(int r, int c) const { return &bits[r][c]; }
};

struct Warp {
  uint32_t regs[32][4];
};

// ldmatrix with lane l's address given by addr(l); lanes past 8 * num get a null address (ignored).
template <typename F>
Warp ldmatrix(int num, bool trans, F addr) {
  const void* rows[32];
  for (int l = 0; l < 32; ++l) rows[l] = l < 8 * num ? addr(l) : nullptr;
  Warp w{};
  lf::emu::ldmatrix_warp(num, trans, rows, w.regs);
  return w;
}

// The A fragment of a row-major 16x16 tile: x4, lane l at (row l % 16, column 8 * (l / 16)).
Warp load_a(const Tile<16, 16>& a) {
  return ldmatrix(4, false, [&](int l) { return a.at(l % 16, 8 * (l / 16)); });
}

// B fragments (16 x 8, column n0..n0+7) from the two layouts kernels keep B in.
// N x K tile, K contiguous (K^T in attention): x2 non-trans, lane l at (n0 + l % 8, 8 * (l / 8)).
Warp load_b_nk(const Tile<16, 16>& bt, int n0) {
  return ldmatrix(2, false, [&](int l) { return bt.at(n0 + l % 8, 8 * (l / 8)); });
}
// K x N row-major tile (V in attention): x2 .trans, lane l at (row l, column n0).
Warp load_b_kn(const Tile<16, 16>& b, int n0) {
  return ldmatrix(2, true, [&](int l) { return b.at(l, n0); });
}

using Acc = float[32][4];

// Max over D of |d - ref| / (sum |a_k b_k| + |c| + tiny): fp32 accumulation of 16 exact products
// stays within ~16 * 2^-24 of that scale; a layout error is off by O(1).
double product_error(const Acc& d, const Acc& c, const Tile<16, 16>& a, int a_col0,
                     const Tile<16, 16>& b, bool b_is_nk, int n0) {
  double worst = 0;
  for (int lane = 0; lane < 32; ++lane)
    for (int r = 0; r < 4; ++r) {
      const int row = lane / 4 + 8 * (r >> 1), col = 2 * (lane % 4) + (r & 1);
      double ref = c[lane][r], scale = std::fabs(c[lane][r]) + 1e-30;
      for (int k = 0; k < 16; ++k) {
        const double p = a.value[row][a_col0 + k] * (b_is_nk ? b.value[n0 + col][k] : b.value[k][n0 + col]);
        ref += p;
        scale += std::fabs(p);
      }
      worst = std::fmax(worst, std::isnan(d[lane][r]) ? INFINITY : std::fabs(d[lane][r] - ref) / scale);
    }
  return worst;
}

constexpr double kTol = 4e-6;

template <HalfKind K>
void mma(const Warp& a, const uint32_t (*b)[4], int b_reg0, const Acc& c, Acc& d) {
  uint32_t bb[32][2];
  for (int l = 0; l < 32; ++l) bb[l][0] = b[l][b_reg0], bb[l][1] = b[l][b_reg0 + 1];
  lf::emu::mma_m16n8k16_warp<K>(a.regs, bb, c, d);
}

// D = A B + C for one 16x8 output tile, with B from each layout and both x2 and x4 loads.
template <HalfKind K>
void product_matches_reference() {
  std::mt19937 rng(K == HalfKind::bf16 ? 1 : 2);
  for (int trial = 0; trial < 20; ++trial) {
    Tile<16, 16> a, bt, b;  // bt: N x K (16 x 16: two n-tiles), b: K x N
    a.randomize<K>(rng), bt.randomize<K>(rng), b.randomize<K>(rng);
    Acc c, d;
    std::uniform_real_distribution<float> dist(-4.f, 4.f);
    for (auto& lane : c)
      for (float& v : lane) v = dist(rng);
    const Warp fa = load_a(a);
    for (int n0 : {0, 8}) {
      mma<K>(fa, load_b_nk(bt, n0).regs, 0, c, d);
      EXPECT(product_error(d, c, a, 0, bt, true, n0) < kTol);
      mma<K>(fa, load_b_kn(b, n0).regs, 0, c, d);
      EXPECT(product_error(d, c, a, 0, b, false, n0) < kTol);
    }
    // x4 loads give both n-tiles at once: registers 0-1 for n0 = 0, 2-3 for n0 = 8.
    const Warp b4_nk = ldmatrix(4, false, [&](int l) { return bt.at(l % 8 + 8 * (l / 16), 8 * (l / 8 % 2)); });
    const Warp b4_kn = ldmatrix(4, true, [&](int l) { return b.at(l % 16, 8 * (l / 16)); });
    for (int half = 0; half < 2; ++half) {
      mma<K>(fa, b4_nk.regs, 2 * half, c, d);
      EXPECT(product_error(d, c, a, 0, bt, true, 8 * half) < kTol);
      mma<K>(fa, b4_kn.regs, 2 * half, c, d);
      EXPECT(product_error(d, c, a, 0, b, false, 8 * half) < kTol);
    }
  }
}

// K = 32 as two accumulating mmas, D in place (d is c), as a kernel's k-loop does it.
template <HalfKind K>
void chained_mmas_accumulate() {
  std::mt19937 rng(3);
  Tile<16, 16> a0, a1, b0, b1;
  a0.randomize<K>(rng), a1.randomize<K>(rng), b0.randomize<K>(rng), b1.randomize<K>(rng);
  Acc acc = {};
  mma<K>(load_a(a0), load_b_kn(b0, 0).regs, 0, acc, acc);
  mma<K>(load_a(a1), load_b_kn(b1, 0).regs, 0, acc, acc);
  double worst = 0;
  for (int lane = 0; lane < 32; ++lane)
    for (int r = 0; r < 4; ++r) {
      const int row = lane / 4 + 8 * (r >> 1), col = 2 * (lane % 4) + (r & 1);
      double ref = 0, scale = 1e-30;
      for (int k = 0; k < 16; ++k) {
        const double p0 = a0.value[row][k] * b0.value[k][col], p1 = a1.value[row][k] * b1.value[k][col];
        ref += p0 + p1;
        scale += std::fabs(p0) + std::fabs(p1);
      }
      worst = std::fmax(worst, std::fabs(acc[lane][r] - ref) / scale);
    }
  EXPECT(worst < 2 * kTol);
}

// Where the math is exact the result is too: B = the identity's first 8 columns picks A's columns,
// including the format's extremes (subnormals, the largest finite values; an infinity would turn its
// row into NaN through inf * 0, as on the GPU).
template <HalfKind K>
void identity_product_is_exact() {
  const uint16_t extremes[] = {0x0001, 0x03ff, 0x0400, 0x8001, 0x7bff, 0xfbff, 0x0200, 0x3c00,  // fp16
                               0x7f7f, 0xff7f, 0x0080, 0x0001, 0x0040, 0x3f80, 0xbf80, 0x8000};  // bf16
  Tile<16, 16> a, b;
  for (int r = 0; r < 16; ++r)
    for (int c = 0; c < 16; ++c) {
      a.bits[r][c] = extremes[(r + c) % 8 + (K == HalfKind::bf16 ? 8 : 0)];
      b.bits[r][c] = r == c ? (K == HalfKind::bf16 ? 0x3f80 : 0x3c00) : 0;  // 1.0 on the diagonal
    }
  Acc c = {}, d;
  mma<K>(load_a(a), load_b_kn(b, 0).regs, 0, c, d);
  int bad = 0;
  for (int lane = 0; lane < 32; ++lane)
    for (int r = 0; r < 4; ++r) {
      const int row = lane / 4 + 8 * (r >> 1), col = 2 * (lane % 4) + (r & 1);
      bad += d[lane][r] != lf::emu::half_bits_to_float<K>(a.bits[row][col]);
    }
  EXPECT_EQ(bad, 0);
}

// The checks above must reject layouts kernels commonly get wrong.
void wrong_layouts_are_caught() {
  std::mt19937 rng(4);
  Tile<16, 16> a, b;
  a.randomize<HalfKind::bf16>(rng), b.randomize<HalfKind::bf16>(rng);
  Acc c = {}, d;
  // A's registers 1 and 2 swapped (rows g+8 vs columns 2t+8).
  Warp fa = load_a(a);
  for (auto& lane : fa.regs) std::swap(lane[1], lane[2]);
  mma<HalfKind::bf16>(fa, load_b_kn(b, 0).regs, 0, c, d);
  EXPECT(product_error(d, c, a, 0, b, false, 0) > 1e-2);
  // A row-major K x N B loaded without .trans (the V-without-.trans bug).
  const Warp b_no_trans = ldmatrix(2, false, [&](int l) { return b.at(l, 0); });
  mma<HalfKind::bf16>(load_a(a), b_no_trans.regs, 0, c, d);
  EXPECT(product_error(d, c, a, 0, b, false, 0) > 1e-2);
  // A with the wrong lane -> address map (lane l at row l / 2): reads the NaN padding or wrong rows.
  const Warp a_bad = ldmatrix(4, false, [&](int l) { return a.at(l / 2, 8 * (l % 2)); });
  mma<HalfKind::bf16>(a_bad, load_b_kn(b, 0).regs, 0, c, d);
  EXPECT(product_error(d, c, a, 0, b, false, 0) > 1e-2);
}

// Element (matrix i, row r, column c) of the test pattern: all distinct.
uint16_t pattern(int i, int r, int c) { return static_cast<uint16_t>(0x1000 * (i + 1) + 0x10 * r + c); }

// Every lane's every register against the PTX formulas, with the row addresses deliberately out of
// order and far apart ("row r" is the row whose address lane 8i + r supplied).
void ldmatrix_per_lane_elements() {
  alignas(16) uint16_t smem[4 * 8 * 3][8];  // 96 rows of 16 bytes; matrix rows land on every 3rd one
  const int scatter[8] = {5, 2, 7, 0, 3, 6, 1, 4};
  for (int i = 0; i < 4; ++i)
    for (int r = 0; r < 8; ++r)
      for (int c = 0; c < 8; ++c) smem[3 * (8 * i + scatter[r])][c] = pattern(i, r, c);
  for (int num : {1, 2, 4})
    for (bool trans : {false, true}) {
      Warp w;  // registers >= num must keep their previous contents
      for (auto& lane : w.regs)
        for (uint32_t& r : lane) r = 0xdeadbeef;
      const void* rows[32];  // lanes past 8 * num: null (ignored)
      for (int l = 0; l < 32; ++l) rows[l] = l < 8 * num ? smem[3 * (8 * (l / 8) + scatter[l % 8])] : nullptr;
      lf::emu::ldmatrix_warp(num, trans, rows, w.regs);
      int bad = 0;
      for (int l = 0; l < 32; ++l) {
        const int g = l >> 2, t = l % 4;
        for (int i = 0; i < 4; ++i) {
          uint32_t want = 0xdeadbeef;
          if (i < num)
            want = trans ? lf::emu::pack_halves(pattern(i, 2 * t, g), pattern(i, 2 * t + 1, g))
                         : lf::emu::pack_halves(pattern(i, g, 2 * t), pattern(i, g, 2 * t + 1));
          bad += w.regs[l][i] != want;
        }
      }
      if (bad) std::fprintf(stderr, "ldmatrix x%d%s: %d wrong registers\n", num, trans ? ".trans" : "", bad);
      EXPECT_EQ(bad, 0);
    }
}

void ldmatrix_rejects_misuse() {
  alignas(16) uint16_t smem[32][16] = {};
  const void* rows[32];
  for (int l = 0; l < 32; ++l) rows[l] = smem[l];
  uint32_t out[32][4];
  EXPECT_THROWS(lf::emu::DialectError, "x1, x2 or x4", lf::emu::ldmatrix_warp(3, false, rows, out));
  rows[9] = &smem[9][1];  // 2-byte aligned
  EXPECT_THROWS(lf::emu::DialectError, "lane 9 is not 16-byte aligned", lf::emu::ldmatrix_warp(2, true, rows, out));
  lf::emu::ldmatrix_warp(1, false, rows, out);  // x1 ignores lane 9's address
}

}  // namespace

int main() {
  lf_test::run("product_matches_reference_bf16", product_matches_reference<HalfKind::bf16>);
  lf_test::run("product_matches_reference_fp16", product_matches_reference<HalfKind::fp16>);
  lf_test::run("chained_mmas_accumulate_bf16", chained_mmas_accumulate<HalfKind::bf16>);
  lf_test::run("chained_mmas_accumulate_fp16", chained_mmas_accumulate<HalfKind::fp16>);
  lf_test::run("identity_product_is_exact_bf16", identity_product_is_exact<HalfKind::bf16>);
  lf_test::run("identity_product_is_exact_fp16", identity_product_is_exact<HalfKind::fp16>);
  lf_test::run("wrong_layouts_are_caught", wrong_layouts_are_caught);
  lf_test::run("ldmatrix_per_lane_elements", ldmatrix_per_lane_elements);
  lf_test::run("ldmatrix_rejects_misuse", ldmatrix_rejects_misuse);
  return lf_test::finish();
}
