// simt/half_host.h: exact widening and round-to-nearest-even narrowing of bf16 / fp16, checked
// exhaustively over the 65536 bit patterns, at every midpoint between neighbours, and against c10's
// own conversions (an independent implementation) on random floats.
#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>

#include <bit>
#include <cmath>
#include <cstdio>
#include <limits>
#include <random>

#include "simt/half_host.h"
#include "tests/expect.h"

using lf::emu::HalfKind;

namespace {

template <HalfKind K>
bool is_nan_bits(uint16_t h) {
  return K == HalfKind::bf16 ? (h & 0x7fff) > 0x7f80 : (h & 0x7fff) > 0x7c00;
}

// Every non-NaN pattern survives widen -> narrow; NaNs stay NaNs.
template <HalfKind K>
void round_trip() {
  int bad = 0;
  for (uint32_t h = 0; h <= 0xffff; ++h) {
    const uint16_t back = lf::emu::float_to_half_bits<K>(lf::emu::half_bits_to_float<K>(h));
    const bool ok = is_nan_bits<K>(h) ? is_nan_bits<K>(back) : back == h;
    if (!ok && bad++ < 5) std::fprintf(stderr, "pattern 0x%04x -> 0x%04x\n", h, back);
  }
  EXPECT_EQ(bad, 0);
}

// Between two neighbouring positive finite values x (pattern h) and y (h + 1): the midpoint rounds to
// the even pattern, anything a float ulp off it to the nearer one. The sign is symmetric.
template <HalfKind K>
void midpoints() {
  const uint16_t top = K == HalfKind::bf16 ? 0x7f7f : 0x7bff;  // last pattern below the largest finite
  int bad = 0;
  for (uint16_t h = 0; h < top; ++h) {
    const float x = lf::emu::half_bits_to_float<K>(h), y = lf::emu::half_bits_to_float<K>(h + 1);
    const float mid = x + (y - x) / 2;  // exact (one bit more than the half format holds); no overflow
    const uint16_t even = (h & 1) ? h + 1 : h;
    const bool ok = lf::emu::float_to_half_bits<K>(mid) == even &&
                    lf::emu::float_to_half_bits<K>(-mid) == (even | 0x8000) &&
                    lf::emu::float_to_half_bits<K>(std::nextafter(mid, 0.f)) == h &&
                    lf::emu::float_to_half_bits<K>(std::nextafter(mid, INFINITY)) == h + 1;
    if (!ok && bad++ < 5) std::fprintf(stderr, "midpoint after pattern 0x%04x\n", h);
  }
  EXPECT_EQ(bad, 0);
}

void specials() {
  const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
  EXPECT_EQ(lf::emu::float_to_fp16_bits(65504.f), 0x7bff);
  EXPECT_EQ(lf::emu::float_to_fp16_bits(65519.99f), 0x7bff);
  EXPECT_EQ(lf::emu::float_to_fp16_bits(65520.f), 0x7c00);  // the tie with 2^16 rounds to infinity
  EXPECT_EQ(lf::emu::float_to_fp16_bits(-inf), 0xfc00);
  EXPECT_EQ(lf::emu::float_to_fp16_bits(0x1p-24f), 0x0001);  // smallest subnormal
  EXPECT_EQ(lf::emu::float_to_fp16_bits(0x1p-25f), 0x0000);  // its half: tie to even (zero)
  EXPECT_EQ(lf::emu::float_to_fp16_bits(0x1.8p-25f), 0x0001);
  EXPECT_EQ(lf::emu::float_to_fp16_bits(-0.f), 0x8000);
  EXPECT_EQ(lf::emu::float_to_fp16_bits(0x1.ff8p-15f), 0x03ff);  // largest subnormal, 1023 * 2^-24
  EXPECT_EQ(lf::emu::float_to_fp16_bits(0x1.ffcp-15f), 0x0400);  // tie: up into the normals (even)
  EXPECT_EQ(lf::emu::fp16_bits_to_float(0x0001), 0x1p-24f);
  EXPECT_EQ(lf::emu::fp16_bits_to_float(0xfc00), -inf);
  EXPECT(std::isnan(lf::emu::fp16_bits_to_float(lf::emu::float_to_fp16_bits(nan))));
  EXPECT_EQ(lf::emu::float_to_bf16_bits(std::numeric_limits<float>::max()), 0x7f80);  // rounds to Inf
  EXPECT_EQ(lf::emu::float_to_bf16_bits(-inf), 0xff80);
  EXPECT_EQ(lf::emu::float_to_bf16_bits(std::numeric_limits<float>::denorm_min()), 0x0000);
  EXPECT_EQ(lf::emu::float_to_bf16_bits(0x1p-133f), 0x0001);  // bf16 subnormals are float's top bits
  EXPECT(std::isnan(lf::emu::bf16_bits_to_float(lf::emu::float_to_bf16_bits(nan))));
  // A signalling NaN whose payload lives in the dropped low bits must not become infinity.
  EXPECT_EQ(lf::emu::float_to_bf16_bits(std::bit_cast<float>(0x7f800001u)) & 0x7fc0, 0x7fc0);
  EXPECT_EQ(lf::emu::float_to_fp16_bits(std::bit_cast<float>(0xff800001u)) & 0xfe00, 0xfe00);
}

// c10::Half / c10::BFloat16 round to nearest even too (ATen's CPU kernels use them).
void against_c10() {
  std::mt19937 rng(7);
  int bad = 0;
  for (int i = 0; i < 1 << 20; ++i) {
    // Random bit patterns cover every exponent, narrow-range ones the fp16 normals and subnormals.
    const float f = i % 2 ? std::bit_cast<float>(static_cast<uint32_t>(rng()))
                          : std::ldexp(static_cast<float>(rng() % 100000) - 50000.f, -static_cast<int>(rng() % 40));
    if (std::isnan(f)) continue;
    const bool ok = lf::emu::float_to_fp16_bits(f) == c10::Half(f).x &&
                    lf::emu::float_to_bf16_bits(f) == c10::BFloat16(f).x;
    if (!ok && bad++ < 5) std::fprintf(stderr, "float %a\n", f);
  }
  EXPECT_EQ(bad, 0);
}

}  // namespace

int main() {
  lf_test::run("round_trip_bf16", round_trip<HalfKind::bf16>);
  lf_test::run("round_trip_fp16", round_trip<HalfKind::fp16>);
  lf_test::run("midpoints_bf16", midpoints<HalfKind::bf16>);
  lf_test::run("midpoints_fp16", midpoints<HalfKind::fp16>);
  lf_test::run("specials", specials);
  lf_test::run("against_c10", against_c10);
  return lf_test::finish();
}
