// Self-tests of the dialect's tensor-core and async-copy wrappers running under the emulator: one warp
// stages tiles through cp.async, loads fragments with ldmatrix and multiplies with mma.m16n8k16, as the
// attention kernels will. The pure layout functions have their own exhaustive tests
// (csrc/tests/test_tensor_core_host.cpp); these prove the wiring through fibers and collectives.
#include <cmath>
#include <random>
#include <stdexcept>
#include <string>

#include "simt/cp_async.cuh"
#include "simt/dialect.cuh"
#include "simt/selftest.h"
#include "simt/tensor_core.cuh"

namespace lf::emu {
namespace {

constexpr int kM = 16, kN = 8, kK = 16;

// a: 16x16 row-major; b_nk: 8x16 (N x K, K contiguous); b_kn: 16x8 (K x N row-major), the same B.
// d_nk / d_kn: the 16x8 products through each B layout. early (optional): what each lane reads from
// its cp.async destination after issuing the copy and before waiting for it.
template <typename In>
LF_GLOBAL void mma_tile_kernel(const In* a, const In* b_nk, const In* b_kn, float* d_nk, float* d_kn,
                               float* early) {
  In* sA = lf::dynamic_smem<In>();
  In* sB = sA + kM * kK;
  In* sBt = sB + kN * kK;
  const int lane = lf::lane_id();
  // Valid values first, so that a read before the wait can only see poison if cp.async put it there.
  for (int i = lane; i < kM * kK + 2 * kN * kK; i += 32) sA[i] = lf::from_float<In>(0.f);
  lf::syncthreads();
  // 16-byte chunks: A has 32 (one per lane); B and B^T 16 each (lanes 0-15 and 16-31).
  lf::cp_async<16>(sA + lane * 8, a + lane * 8, 16);
  if (lane < 16) {
    lf::cp_async<16>(sB + lane * 8, b_nk + lane * 8, 16);
  } else {
    lf::cp_async<16>(sBt + (lane - 16) * 8, b_kn + (lane - 16) * 8, 16);
  }
  lf::cp_async_commit();
  if (early) early[lane] = lf::to_float(sA[lane * 8]);
  lf::cp_async_wait<0>();
  lf::syncthreads();

  uint32_t ra[4], rb[2], rbt[2];
  lf::ldmatrix_x4(ra, sA + (lane % 16) * kK + 8 * (lane / 16));
  lf::ldmatrix_x2(rb, sB + (lane % 8) * kK + 8 * ((lane / 8) % 2));  // lanes 16-31: ignored by x2
  lf::ldmatrix_x2_trans(rbt, sBt + (lane % 16) * kN);
  const float zero[4] = {0.f, 0.f, 0.f, 0.f};
  float d[4], dt[4];
  lf::mma_m16n8k16<In>(d, ra, rb, zero);
  lf::mma_m16n8k16<In>(dt, ra, rbt, zero);
  const int g = lane >> 2, t = lane % 4;  // C/D layout: (g, 2t..2t+1) and (g + 8, 2t..2t+1)
  for (int i = 0; i < 4; ++i) {
    const int idx = (g + 8 * (i / 2)) * kN + 2 * t + i % 2;
    d_nk[idx] = d[i];
    d_kn[idx] = dt[i];
  }
}

void check(bool ok, const std::string& what) {
  if (!ok) throw std::runtime_error(what);
}

template <typename In>
void tile_product(const char* name) {
  std::mt19937 rng(11);
  std::normal_distribution<float> dist;
  alignas(16) In a[kM * kK], b_nk[kN * kK], b_kn[kK * kN];
  double ref[kM * kN] = {};
  for (auto& v : a) v = lf::from_float<In>(dist(rng));
  for (int n = 0; n < kN; ++n)
    for (int k = 0; k < kK; ++k) b_kn[k * kN + n] = b_nk[n * kK + k] = lf::from_float<In>(dist(rng));
  for (int m = 0; m < kM; ++m)
    for (int n = 0; n < kN; ++n)
      for (int k = 0; k < kK; ++k)
        ref[m * kN + n] += double(lf::to_float(a[m * kK + k])) * double(lf::to_float(b_nk[n * kK + k]));

  float first[kM * kN];
  for (Schedule s : {Schedule::kForward, Schedule::kReverse, Schedule::kRandom}) {
    float d_nk[kM * kN], d_kn[kM * kN];
    LaunchConfig c;
    c.kernel = name;
    c.grid = dim3(1);
    c.block = dim3(32);
    c.dynamic_smem = (kM * kK + 2 * kN * kK) * sizeof(In);
    c.schedule = s;
    launch(c, &mma_tile_kernel<In>, a, b_nk, b_kn, d_nk, d_kn, static_cast<float*>(nullptr));
    for (int i = 0; i < kM * kN; ++i) {
      check(std::fabs(d_nk[i] - ref[i]) <= 1e-5 * (1 + std::fabs(ref[i])),
            std::string(name) + ": D[" + std::to_string(i) + "] = " + std::to_string(d_nk[i]) +
                ", reference " + std::to_string(ref[i]));
      check(d_kn[i] == d_nk[i], std::string(name) + ": B through ldmatrix .trans differs at " +
                                    std::to_string(i));
      if (s != Schedule::kForward) check(d_nk[i] == first[i], std::string(name) + ": schedule-dependent");
    }
    if (s == Schedule::kForward) std::copy(d_nk, d_nk + kM * kN, first);
  }
}

}  // namespace

void mma_ldmatrix_cp_async_reproduce_a_matrix_product() {
  tile_product<lf::bf16>("mma_tile_kernel<bf16>");
  tile_product<lf::fp16>("mma_tile_kernel<fp16>");
}

void cp_async_destination_is_poisoned_until_the_wait() {
  alignas(16) lf::bf16 a[kM * kK], b[kN * kK];
  for (auto& v : a) v = lf::from_float<lf::bf16>(1.f);
  for (auto& v : b) v = lf::from_float<lf::bf16>(1.f);
  float d[kM * kN], dt[kM * kN], early[32];
  LaunchConfig c;
  c.kernel = "mma_tile_kernel<bf16> (reading early)";
  c.grid = dim3(1);
  c.block = dim3(32);
  c.dynamic_smem = (kM * kK + 2 * kN * kK) * sizeof(lf::bf16);
  launch(c, &mma_tile_kernel<lf::bf16>, a, b, b, d, dt, early);
  for (int l = 0; l < 32; ++l)
    check(std::isnan(early[l]), "lane " + std::to_string(l) + " read " + std::to_string(early[l]) +
                                    " from its cp.async destination before the wait, not the poison");
  for (int i = 0; i < kM * kN; ++i) check(d[i] == 16.f, "after the wait the data must have arrived");
}

}  // namespace lf::emu
